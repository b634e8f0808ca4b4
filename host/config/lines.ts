// Which line of a TOML file defines which key. TOML parsers report positions
// only for syntax errors; this finds the line to name when a well-formed file
// has an unknown key or a value of the wrong type. It reads table headers
// ([a.b], [[a.b]]) and key lines (a.b = ...), bare and quoted keys, and skips
// comments and the insides of multi-line strings and arrays.
// Limits: keys inside an inline table ({ x = 1 }) are reported at the line of
// the key that holds the table, and a line holding the end of one multi-line
// string and the start of another is not followed.
export interface KeyLines {
  /** The line (1-based) defining `key`, else the closest line defining a table that holds it. */
  lineOf(key: readonly string[]): number | undefined;
  /** The key defined on `line`, or the table a header on it opens. */
  keyAt(line: number): string[] | undefined;
}

const BARE = /^[A-Za-z0-9_-]+/;

/** Reads a dotted key at the start of `s`; returns it and the rest of `s`, or undefined if `s` does not start with one. */
function readKey(s: string): { key: string[]; rest: string } | undefined {
  const key: string[] = [];
  for (;;) {
    s = s.trimStart();
    let m: RegExpMatchArray | null;
    if ((m = s.match(/^"((?:[^"\\]|\\.)*)"/))) {
      try {
        key.push(JSON.parse(m[0]) as string);
      } catch {
        key.push(m[1]!); // a TOML-only escape such as \UXXXXXXXX: the raw text is good enough to locate it
      }
    } else if ((m = s.match(/^'([^']*)'/))) {
      key.push(m[1]!);
    } else if ((m = s.match(BARE))) {
      key.push(m[0]);
    } else {
      return undefined;
    }
    s = s.slice(m[0].length).trimStart();
    if (!s.startsWith('.')) return { key, rest: s };
    s = s.slice(1);
  }
}

/** What follows `=` opens a multi-line string or array that does not close on this line: the text that closes it. */
function opensBlock(value: string): string | undefined {
  const v = value.trim();
  for (const quote of ['"""', "'''"]) {
    if (v.startsWith(quote) && !v.slice(3).includes(quote)) return quote;
  }
  // An array left open: count brackets outside strings and comments.
  if (!v.startsWith('[')) return undefined;
  let depth = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '#') break;
    if (c === '"' || c === "'") {
      const end = v.indexOf(c, i + 1);
      if (end < 0) break;
      i = end;
    } else if (c === '[') depth++;
    else if (c === ']') depth--;
  }
  return depth > 0 ? ']' : undefined;
}

export function scanKeyLines(text: string): KeyLines {
  const firstLine = new Map<string, number>();
  const atLine = new Map<number, string[]>();
  const id = (key: readonly string[]) => JSON.stringify(key);
  const define = (key: string[], line: number) => {
    for (let n = 1; n <= key.length; n++) {
      if (!firstLine.has(id(key.slice(0, n)))) firstLine.set(id(key.slice(0, n)), line);
    }
    atLine.set(line, key);
  };

  let table: string[] = [];
  let closer: string | undefined; // set while inside a multi-line string or array
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (closer !== undefined) {
      if (raw.includes(closer)) closer = undefined;
      return;
    }
    const s = raw.trimStart();
    const header = s.match(/^\[\[?/);
    if (header) {
      const parsed = readKey(s.slice(header[0].length));
      if (parsed && parsed.rest.startsWith(header[0] === '[[' ? ']]' : ']')) {
        table = parsed.key;
        define(table, line);
      }
      return;
    }
    const parsed = readKey(s);
    if (!parsed || !parsed.rest.startsWith('=')) return;
    define([...table, ...parsed.key], line);
    closer = opensBlock(parsed.rest.slice(1));
  });

  return {
    lineOf(key) {
      for (let n = key.length; n > 0; n--) {
        const line = firstLine.get(id(key.slice(0, n)));
        if (line !== undefined) return line;
      }
      return undefined;
    },
    keyAt: (line) => atLine.get(line),
  };
}
