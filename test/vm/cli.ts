// Runs the hako CLI (dist/host/cli/main.js) as a child process for the VM tests.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../host/native.js';

export const cli = path.join(repoRoot, 'dist', 'host', 'cli', 'main.js');

/** `hako ARGS...` with no stdin; resolves with its exit code and all of its output. */
export function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
