// Proleptic Gregorian calendar arithmetic on day numbers counted from
// 1970-01-01 (day 0), done on March-based years so that the leap day is the
// last day of the year. Valid for any year the RTC can hold (0-9999).

const DAYS_PER_400_YEARS: i64 = 146097;
/** Day number of 0000-03-01, the start of the March-based era the formulas count from. */
const EPOCH_SHIFT: i64 = 719468;

/** Division rounding toward minus infinity (b > 0). */
export function floorDiv(a: i64, b: i64): i64 {
  const q = a / b;
  return a % b < 0 ? q - 1 : q;
}

function isLeapYear(year: i64): bool {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

export function daysInMonth(year: i64, month: i32): i32 {
  if (month == 2) return isLeapYear(year) ? 29 : 28;
  return month == 4 || month == 6 || month == 9 || month == 11 ? 30 : 31;
}

/** Days since 1970-01-01 of year-month-day (month 1-12, day 1-31). */
export function daysFromCivil(year: i64, month: i32, day: i32): i64 {
  const y = month <= 2 ? year - 1 : year;
  const era = floorDiv(y, 400);
  const yearOfEra = y - era * 400; // 0..399
  const monthFromMarch: i64 = (month + 9) % 12; // March = 0
  const dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1; // 0..365
  const dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;
  return era * DAYS_PER_400_YEARS + dayOfEra - EPOCH_SHIFT;
}

/** A calendar date; `weekday` is 0 for Sunday. */
export class CivilDate {
  year: i64 = 1970;
  month: i32 = 1;
  day: i32 = 1;
  weekday: i32 = 4;
}

/** Fills `out` with the date of day number `days` (days since 1970-01-01). */
export function civilFromDays(days: i64, out: CivilDate): void {
  const z = days + EPOCH_SHIFT;
  const era = floorDiv(z, DAYS_PER_400_YEARS);
  const dayOfEra = z - era * DAYS_PER_400_YEARS; // 0..146096
  const yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
  const dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
  const monthFromMarch = (5 * dayOfYear + 2) / 153;
  const month = <i32>(monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9);
  out.year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  out.month = month;
  out.day = <i32>(dayOfYear - (153 * monthFromMarch + 2) / 5 + 1);
  const fromSunday = days + 4; // 1970-01-01 was a Thursday
  out.weekday = <i32>(fromSunday - floorDiv(fromSunday, 7) * 7);
}
