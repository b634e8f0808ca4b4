// The benchmark probe (guest/probe/) under `hako boot`: it finds the disk and
// the RNG, runs every test at CPL3 and powers off cleanly. bench/probe.ts runs
// the same ELF under QEMU too; this test needs hako only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildProbe, hakoProbeArgs, parseProbe, PROBE_DISK_MIB, PROBE_TESTS } from '../../bench/probe.js';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the probe runs every test under hako and powers off with exit 0', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-probe-test-'));
  try {
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, PROBE_DISK_MIB << 20);
    const { code, stdout, stderr } = await run(hakoProbeArgs(buildProbe(), disk));
    const parsed = parseProbe(stdout);
    if (typeof parsed === 'string') assert.unreachable(`${parsed}\nstdout: ${stdout}\nstderr: ${stderr}`);
    else {
      assert.equal([...parsed.tests.keys()], [...PROBE_TESTS]);
      for (const [name, line] of parsed.tests) {
        assert.ok(line.cycles > 0 && line.ops > 0, `${name}: ${JSON.stringify(line)}`);
      }
      // The RNG filled every 4 KiB request.
      const rng = parsed.tests.get('rng-4k')!;
      assert.is(rng.bytes, rng.ops * 4096);
      assert.ok(parsed.doneTsc > parsed.startTsc);
    }
    assert.is(code, 0, `exit status ${code}, expected 0 (the guest powered off); stderr: ${stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
