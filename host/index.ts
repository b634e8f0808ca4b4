// The package's public API (`import { Sandbox } from 'hako'`).
export { Sandbox, type SandboxOptions } from './sandbox/sandbox.js';
export { Container, type ContainerStats } from './sandbox/container.js';
export { ContainerProcess, type ExitStatus } from './sandbox/process.js';
export type { ContainerOptions, ProcessOptions, Volume } from './sandbox/oci-spec.js';
export { HakoError, type HakoErrorCode } from './errors.js';
export { TtrpcError } from './ttrpc/status.js';
export { loadConfig, type LoadedConfig, type LoadOptions } from './config/load.js';
export { ConfigError } from './config/errors.js';
export { Vm, type VmExit } from './vmm/vm.js';
export type { FsCacheMode, ShareConfig } from './vmm/config.js';
