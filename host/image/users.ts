// User and group names of a container's root file system, resolved the way
// Docker does for `--user` and an image's User: "NAME", "UID", "NAME:GROUP",
// "UID:GID" (and mixes), names looked up in the tree's /etc/passwd and
// /etc/group. The runtime needs numbers (the OCI spec has no names), and the
// host reads the files before the tree becomes a disk image, through a Root
// so an image's symlinked /etc/passwd cannot make us read a host file.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { Root, SafePathError } from '../fs/safe-path.js';

/** The tree's /etc/passwd and /etc/group, '' where missing. */
export interface UserDb {
  passwd: string;
  group: string;
}

export const EMPTY_USER_DB: UserDb = { passwd: '', group: '' };

/** Larger account files are refused rather than read into memory. */
const MAX_FILE_BYTES = 1 << 20;
const MAX_ID = 0xfffffffe;

function readInRoot(root: Root, rel: string): string {
  let fd: number;
  try {
    fd = root.openFile(rel);
  } catch (e) {
    if (e instanceof SafePathError && (e.reason === 'not-found' || e.reason === 'not-directory')) return '';
    throw e;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_FILE_BYTES) {
      throw new HakoError('INVALID_ARGUMENT', `${root.dir}/${rel} is ${size} bytes, more than the ${MAX_FILE_BYTES} hako reads`);
    }
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads /etc/passwd and /etc/group of the root file system tree `dir`. */
export function readUserDb(dir: string): UserDb {
  const root = Root.open(dir);
  try {
    return { passwd: readInRoot(root, 'etc/passwd'), group: readInRoot(root, 'etc/group') };
  } finally {
    root.close();
  }
}

/** The colon-separated fields of the line whose first field is `name`, or of the first line whose third is `id`. */
function findEntry(file: string, by: { name: string } | { id: number }): string[] | undefined {
  for (const line of file.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 4) continue;
    if ('name' in by ? fields[0] === by.name : fields[2] === String(by.id)) return fields;
  }
  return undefined;
}

const numeric = (s: string): number | undefined => (/^\d+$/.test(s) ? Number(s) : undefined);

/**
 * Resolves `value` (USER[:GROUP], each a name or a number) against `db`;
 * `what` names the value in messages. Without a group, the user's passwd
 * entry gives it (0 when a numeric user has no entry, as in Docker).
 */
export function resolveUser(value: string, db: UserDb, what: string): { uid: number; gid: number } {
  const m = /^([^:]+)(?::([^:]+))?$/.exec(value);
  if (!m) throw new HakoError('INVALID_ARGUMENT', `${what} must be USER[:GROUP] (names or numbers), got ${JSON.stringify(value)}`);
  const [, user, group] = m as unknown as [string, string, string | undefined];
  const checked = (id: number, kind: string): number => {
    if (id > MAX_ID) throw new HakoError('INVALID_ARGUMENT', `${what}: ${kind} ${id} is above ${MAX_ID}`);
    return id;
  };

  let uid = numeric(user);
  const entry = findEntry(db.passwd, uid === undefined ? { name: user } : { id: uid });
  if (uid === undefined) {
    const found = entry && numeric(entry[2]!);
    if (found === undefined) throw new HakoError('INVALID_ARGUMENT', `${what}: no user '${user}' in the root file system's /etc/passwd`);
    uid = found;
  }
  let gid: number | undefined;
  if (group === undefined) gid = (entry && numeric(entry[3]!)) ?? 0;
  else {
    gid = numeric(group);
    if (gid === undefined) {
      gid = numeric(findEntry(db.group, { name: group })?.[2] ?? '');
      if (gid === undefined) throw new HakoError('INVALID_ARGUMENT', `${what}: no group '${group}' in the root file system's /etc/group`);
    }
  }
  return { uid: checked(uid, 'user id'), gid: checked(gid, 'group id') };
}
