// `hako run`: one container in a fresh sandbox, on this terminal; hako exits
// with the container's exit status and destroys the sandbox.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { logConfigFiles, logger } from '../config/logging.js';
import { bundledRootfsImage, imageRoot } from '../image/cache.js';
import { bundledGuest } from '../guest.js';
import { readUserDb, resolveUser, type UserDb } from '../image/users.js';
import { loadImage, type ImageConfig } from '../image/oci.js';
import type { ProcessOptions } from '../sandbox/oci-spec.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { newRecord, writeRecord } from '../sandbox/state.js';
import { MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../vmm/config.js';
import { integerOption, parse } from './args.js';
import { attach, SignalRelay } from './attach.js';
import { commandConfig, CONFIG_OPTION, envList, envOptions, splitOperands, stateDir, volumeOptions, workdirOption } from './run-args.js';

export const runHelp = `Usage: hako run [options] [--] CMD [ARGS...]

Runs one container in a fresh sandbox, a microVM cloned from a template of
the bundled guest (the first sandbox of a shape makes the template: one cold
boot). The container's output goes to this terminal; hako exits with its exit
status and destroys the sandbox. Options end at CMD, or at --.

Options:
  --image REF            root file system and defaults from an OCI image: a
                         layout directory (DIR, DIR:NAME) or an image archive
                         (FILE.tar, FILE.tar:REPO:TAG; docker save or an OCI
                         layout). Its Entrypoint comes before CMD (or its Cmd
                         when there is no CMD); Env, WorkingDir and User apply
  --rootfs DIR           root file system: the directory DIR, shared into the
                         VM with virtio-fs; the container's writes reach it
                         (default: the bundled busybox root file system)
  -v, --volume HOST:DIR[:ro]
                         mount the host directory HOST at DIR in the
                         container (virtio-fs); repeatable
  -i, --interactive      send this standard input to the container's
  -t, --tty              give the container a terminal (stderr goes to it too);
                         with -i on a terminal, ours is in raw mode meanwhile
  -e, --env NAME=VALUE   set a variable; NAME alone passes ours on; repeatable
  -w, --workdir DIR      working directory (default: the image's, else /)
  -u, --user UID[:GID]   user to run as (default: the image's, else root)
  --memory MiB           guest RAM, ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} (default: resources.memory_mib)
  --vcpus N              vCPUs (default: resources.vcpus)
  --config FILE          configuration file (see 'hako config --help')
  -h, --help             show this help

While it runs, 'hako ps' lists the sandbox, and 'hako exec', 'hako kill' and
'hako rm --force' reach it by its id. Its state is kept in $HAKO_STATE_DIR,
else paths.state_dir (default /run/hako).

Signals: the first SIGINT (Ctrl-C), SIGTERM, SIGHUP or SIGQUIT hako gets goes
to the container's process; a second one destroys the sandbox.

Exit status: the container's exit code, or 128 + the number of the signal that
killed it (or of the second signal hako got); 2 on bad input, 1 when hako
fails.`;

const OPTIONS = {
  image: { type: 'string' },
  rootfs: { type: 'string' },
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  env: { type: 'string', short: 'e', multiple: true },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
  volume: { type: 'string', short: 'v', multiple: true },
  memory: { type: 'string' },
  vcpus: { type: 'string' },
  ...CONFIG_OPTION,
  help: { type: 'boolean', short: 'h' },
} as const;

interface RootfsChoice {
  /** The ext4 image the sandbox's disk holds; the bundled one when the root file system is a directory. */
  file: string;
  /** A host directory shared with virtio-fs as the root file system instead. */
  directory?: string;
  config: ImageConfig;
  users: UserDb;
  /** How `hako ps` names it. */
  name: string;
}

/** The root file system, the image's run configuration and its user names; images are cached in `imageCache`. */
async function rootfs(values: { image?: string; rootfs?: string }, imageCache: string): Promise<RootfsChoice> {
  if (values.image !== undefined && values.rootfs !== undefined) {
    throw new HakoError('INVALID_ARGUMENT', '--image and --rootfs both name the root file system: give one');
  }
  if (values.image !== undefined) {
    const image = await loadImage(values.image, imageCache);
    return { file: image.rootfsImage, config: image.config, users: image.users, name: values.image };
  }
  if (values.rootfs !== undefined) {
    const dir = path.resolve(values.rootfs);
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
      throw new HakoError('INVALID_ARGUMENT', `--rootfs expects a directory, got ${JSON.stringify(values.rootfs)}`);
    }
    return { file: bundledRootfsImage(undefined, imageCache), directory: dir, config: {}, users: readUserDb(dir), name: dir };
  }
  return { file: bundledRootfsImage(undefined, imageCache), config: {}, users: readUserDb(bundledGuest().rootfs), name: 'busybox (bundled)' };
}

/** The process as the command line gives it, checked before any slow work; the image fills in the rest. */
function commandLineProcess(values: ReturnType<typeof parse<typeof OPTIONS>>['values']) {
  return {
    env: envOptions(values.env),
    cwd: workdirOption(values.workdir),
    user: values.user,
    tty: values.tty ?? false,
    stdin: values.interactive ?? false,
  };
}

/** The container's process: the command line's, over the image's defaults. */
function withImageDefaults(given: ReturnType<typeof commandLineProcess>, operands: string[], image: ImageConfig, users: UserDb, imageName: string): ProcessOptions {
  const args = [...image.entrypoint ?? [], ...operands.length > 0 ? operands : image.cmd ?? []];
  if (args.length === 0) {
    throw new HakoError('INVALID_ARGUMENT', `missing command: image ${imageName} has no Entrypoint or Cmd ('hako run [options] -- CMD [ARGS...]')`);
  }
  const { user: givenUser, ...rest } = given;
  const user = givenUser !== undefined ? resolveUser(givenUser, users, '--user')
    : image.user !== undefined && image.user !== '' ? resolveUser(image.user, users, `image ${imageName}: User`) : undefined;
  return {
    ...rest,
    args,
    env: { ...envList(image.env ?? []), ...given.env },
    cwd: given.cwd ?? image.workingDir ?? '/',
    ...user === undefined ? {} : { user },
  };
}

export async function run(argv: string[]): Promise<number> {
  const split = splitOperands(argv, OPTIONS);
  const { values } = parse(split.options, OPTIONS, 'run');
  if (values.help) {
    console.log(runHelp);
    return 0;
  }
  const config = commandConfig(values.config);
  const log = logger(config);
  logConfigFiles(config, log);
  const vcpus = integerOption(values.vcpus, 'vcpus') ?? config.values.resources.vcpus;
  const memoryMiB = integerOption(values.memory, 'memory') ?? config.values.resources.memory_mib;
  if (vcpus < 1) throw new HakoError('INVALID_ARGUMENT', `--vcpus must be at least 1, got ${vcpus}`);
  if (memoryMiB < MIN_MEMORY_MIB || memoryMiB > MAX_MEMORY_MIB) {
    throw new HakoError('INVALID_ARGUMENT', `--memory must be from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} MiB, got ${memoryMiB}`);
  }
  if (split.operands.length === 0 && values.image === undefined) {
    throw new HakoError('INVALID_ARGUMENT', "missing command: 'hako run [options] -- CMD [ARGS...]'");
  }
  const given = commandLineProcess(values);
  const volumes = volumeOptions(values.volume);
  const image = await rootfs(values, imageRoot(process.env, config));
  const proc = withImageDefaults(given, split.operands, image.config, image.users, image.name);
  const { tty, stdin } = given;

  // Making the sandbox takes seconds (a template, the first time: a minute):
  // a signal then cancels it, a second one leaves at once.
  const relay = new SignalRelay();
  const cancel = new AbortController();
  relay.listen(() => cancel.abort(new Error('interrupted')), () => process.exit(relay.exitStatus));
  let sandbox: Sandbox | undefined;
  let abandoned = false;
  try {
    sandbox = await Sandbox.create({
      vcpus,
      memoryMiB,
      rootfsImage: image.file,
      stateDir: stateDir(config),
      config,
      progress: log.info,
      signal: cancel.signal,
    });
    const container = await sandbox.createContainer({
      id: sandbox.id,
      ...proc,
      ...image.directory === undefined ? {} : { rootfs: { directory: image.directory } },
      volumes,
    }, { signal: cancel.signal });
    const box = sandbox;
    const vmStopped = box.exited.then((exit) => {
      throw new HakoError('VM_FAILED', `the sandbox's VM stopped: ${exit.detail}`);
    });
    vmStopped.catch(() => {}); // it also stops when destroyed, after the container exited
    const status = await Promise.race([
      attach(container, relay, {
        tty,
        stdin,
        start: async () => {
          await container.start();
          // Now other hako processes can find it (and exec into it).
          writeRecord(box.dir, newRecord(box.dir, { containerId: container.id, image: image.name, command: proc.args, env: proc.env!, users: image.users }));
        },
        abandon: () => {
          abandoned = true;
          void box.destroy();
        },
      }),
      vmStopped,
    ]);
    if (status.oomKilled) console.error('hako run: the container ran out of memory (see --memory)');
    return status.exitCode;
  } catch (e) {
    if (cancel.signal.aborted || abandoned) return relay.exitStatus!;
    throw e;
  } finally {
    relay.close();
    await sandbox?.destroy();
  }
}
