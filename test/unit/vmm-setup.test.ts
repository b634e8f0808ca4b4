import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootMsrs, configureLapicLints } from '../../host/vmm/vcpu_setup.js';
import { platformCmdline } from '../../host/vmm/cmdline.js';
import { validateVcpuLimit, validateVmConfig, type VmConfig } from '../../host/vmm/config.js';
import { HakoError } from '../../host/errors.js';

test('boot MSRs are limited to what KVM reports', () => {
  const msrs = bootMsrs([0x10, 0x2ff, 0xc0000082]);
  assert.equal(msrs.map((m) => m.index).sort(), [0x10, 0x2ff, 0xc0000082].sort());
  assert.is(msrs.find((m) => m.index === 0x2ff)!.data, 0x806n, 'MTRRs on, write-back default');
});

test('LAPIC LINT0 becomes ExtINT and LINT1 NMI, other bits kept', () => {
  const lapic = Buffer.alloc(1024);
  lapic.writeUInt32LE(0x10000 | 0x500, 0x350); // masked, some other mode
  lapic.writeUInt32LE(0x10000, 0x360);
  configureLapicLints(lapic);
  assert.is(lapic.readUInt32LE(0x350), 0x10700);
  assert.is(lapic.readUInt32LE(0x360), 0x10400);
});

test('platform options are appended once; the exit port is always ours', () => {
  assert.is(platformCmdline('console=ttyS0', { pvmHost: false }), 'console=ttyS0 hako.exit_port=0xf4');
  assert.is(platformCmdline(' console=ttyS0  quiet ', { pvmHost: true }), 'console=ttyS0 quiet hako.exit_port=0xf4 hako.pvm=1');
  assert.is(platformCmdline('hako.exit_port=0x99 hako.pvm=0', { pvmHost: true }), 'hako.pvm=0 hako.exit_port=0xf4');
});

const good: VmConfig = { kernel: 'k', cmdline: '', vcpus: 1, memoryMiB: 256, cpuTemplate: 'host' };
const rejects = (cfg: Partial<VmConfig>, pattern: RegExp) => {
  try {
    validateVmConfig({ ...good, ...cfg });
    validateVcpuLimit(cfg.vcpus ?? good.vcpus, 8);
  } catch (e) {
    assert.instance(e, HakoError);
    assert.is((e as HakoError).code, 'INVALID_ARGUMENT');
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(cfg)}`);
};

test('VM config limits name the value and the allowed range', () => {
  validateVmConfig(good);
  validateVmConfig({ ...good, memoryMiB: 64, vcpus: 8 });
  validateVcpuLimit(8, 8);
  validateVmConfig({ ...good, memoryMiB: 4096 });
  rejects({ vcpus: 0 }, /vcpus must be a whole number of at least 1, got 0/);
  rejects({ vcpus: 9 }, /host's KVM limit.*got 9/);
  rejects({ vcpus: 1.5 }, /vcpus/);
  rejects({ memoryMiB: 63 }, /from 64 to 4096, got 63/);
  rejects({ memoryMiB: 4097 }, /got 4097/);
  rejects({ cpuTemplate: 'fast' as never }, /host, compatible, got "fast"/);
});

test.run();
