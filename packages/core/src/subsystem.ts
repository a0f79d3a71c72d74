import type { ConfigEntry } from './bdev/types';
import type { RpcMethod } from './rpc/types';

/**
 * A subsystem of the daemon (bdev, vhost_blk, migration...), SPDK's unit of init order and of
 * save_config. Registered into the container under Tokens.Subsystem.
 */
export interface Subsystem {
  /** Name as it appears in the config's `subsystems[].subsystem`. */
  readonly name: string;
  /** Subsystems that must be initialised first (and finished after this one). */
  readonly dependsOn: readonly string[];
  /** RPC methods owned by the subsystem itself (not by a bdev module). */
  rpcMethods?(): RpcMethod[];
  /** Called once after startup-state config entries ran and before runtime ones. */
  init?(): Promise<void>;
  /** Called at shutdown in reverse dependency order. */
  fini?(): Promise<void>;
  /** This subsystem's part of framework_get_config, as replayable RPC calls. */
  config(): ConfigEntry[];
}
