/**
 * @blockwork/core — the bdev layer, DI composition, SPDK-compatible config and JSON-RPC, and the
 * built-in malloc, null and passthru bdevs. Plugins import only from this entry.
 *
 * @example
 * import 'reflect-metadata';
 * import { BdevLayer, io } from '@blockwork/core';
 * const desc = layer.open('Malloc0', true);
 * const ch = desc.getIoChannel();
 * await io.write(ch, Buffer.alloc(4096, 0xab), 0, 8);
 */
import 'reflect-metadata';

export * from './errno';
export * from './errors';
export * from './tokens';
export * from './subsystem';
export * from './aligned-buffer';
export * from './bdev/types';
export * from './bdev/iostat';
export { IoChannel, sliceIovs } from './bdev/io-channel';
export * from './bdev/bdev-layer';
export * from './bdev/promise-io';
export * from './rpc/types';
export * from './rpc/rpc-error';
export * from './rpc/rpc-registry';
export * from './plugin/plugin';
export * from './logger';
export * from './daemon';
export * from './framework-rpc';
export { BdevSubsystem } from './bdev/bdev-subsystem';
export { bdevToJson } from './bdev/bdev-json';
export { CompletionBatch } from './bdev/completion-batch';
export { ioTuning, type IoTuning } from './bdev/io-tuning';
export { MallocBdevModule } from './bdev/malloc/malloc-module';
export { NullBdevModule } from './bdev/null/null-module';
export { PassthruBdevModule } from './bdev/passthru/passthru-module';
export * from './bdev/common-params';
export * from './config/config-file';
export { replayConfig, pluginForMethod } from './config/config-replay';
export * from './plugin/plugin-loader';
export { RpcServer } from './rpc/rpc-server';
export { RpcClient } from './rpc/rpc-client';
export * from './testkit/bdev-compliance';
export * from './testkit/submit-batches';
export { loadAddon, packageRoot } from './native';
// Plugins register through core's own tsyringe, so they never load a second copy of the container.
export { inject, injectable, injectAll, Lifecycle, instancePerContainerCachingFactory } from 'tsyringe';
export type { DependencyContainer } from 'tsyringe';
export * from './perf/perf-job';
export { StateFile } from './state-file';
