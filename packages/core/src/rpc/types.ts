/** JSON Schema subset used to declare RPC params: every property carries a description. */
export interface ParamSchema {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | Array<'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null'>;
  description: string;
  enum?: readonly unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  items?: Omit<ParamSchema, 'description'> & { description?: string };
  properties?: Record<string, ParamSchema>;
  additionalProperties?: boolean;
  default?: unknown;
}

/** The params object of a method: named members, required ones listed. */
export interface ParamsSchema {
  properties: Record<string, ParamSchema>;
  required?: readonly string[];
  /** SPDK's decoders reject unknown members; a few methods (vhost) are lenient. Default false. */
  allowUnknown?: boolean;
}

/** When a method may be called: before subsystem init (startup) and/or after (runtime), as SPDK. */
export type RpcState = 'startup' | 'runtime';

/** Context handed to every handler. */
export interface RpcContext {
  /** Aborted when the client that sent the request disconnects, or at shutdown. */
  readonly signal: AbortSignal;
}

/**
 * One JSON-RPC method. Handlers throw BlockworkError for operational failures; the server maps the
 * error to SPDK's codes. Params arrive validated against `params` (unknown, missing and mistyped
 * members are rejected before the handler runs).
 */
export interface RpcMethod<P = any> {
  /** SPDK-style name: bdev_<kind>_<verb>, vhost_..., framework_... */
  readonly name: string;
  /** One sentence for rpc_get_methods documentation and `blockwork rpc --help`. */
  readonly description: string;
  /** Params schema; omit for methods that take no params (any params are then rejected). */
  readonly params?: ParamsSchema;
  /** Default ['runtime']. */
  readonly states?: readonly RpcState[];
  handler(params: P, ctx: RpcContext): unknown | Promise<unknown>;
}

/** Anything besides bdev modules and subsystems that contributes RPC methods (registered under Tokens.RpcMethodProvider). */
export interface RpcMethodProvider {
  rpcMethods(): RpcMethod[];
}
