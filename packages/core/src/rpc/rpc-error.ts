/** JSON-RPC error codes as SPDK uses them. */
export const RpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** SPDK's code for a method called in the wrong state (startup vs runtime). */
  INVALID_STATE: -1,
} as const;

/** An error that already carries its JSON-RPC code (protocol-level failures). */
export class RpcError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** True for an RpcError from any copy of core. */
export function isRpcError(e: unknown): e is RpcError {
  return e instanceof Error && typeof (e as RpcError).rpcCode === 'number';
}
