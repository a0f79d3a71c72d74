import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { coreError } from '../errors';
import { RpcCode, RpcError } from './rpc-error';
import type { ParamsSchema, RpcContext, RpcMethod, RpcState } from './types';

interface Entry {
  method: RpcMethod;
  validate: ValidateFunction | null;
  states: readonly RpcState[];
}

/**
 * All RPC methods of a daemon, with their compiled params validators. `call` is the one entry for
 * the socket server, the config loader and in-process callers alike, so a config entry is checked
 * exactly as a live request.
 */
export class RpcRegistry {
  private readonly methods = new Map<string, Entry>();
  private readonly ajv = new Ajv({ allErrors: false, strict: false, useDefaults: false });
  /** 'startup' until the framework is initialised (after the config's startup entries). */
  state: RpcState = 'startup';

  add(method: RpcMethod): void {
    if (this.methods.has(method.name)) throw coreError('RPC_METHOD_EXISTS', `RPC method ${method.name} is declared twice`);
    const validate = method.params ? this.ajv.compile(toJsonSchema(method.params)) : null;
    this.methods.set(method.name, { method, validate, states: method.states ?? ['runtime'] });
  }

  has(name: string): boolean {
    return this.methods.has(name);
  }

  get(name: string): RpcMethod | undefined {
    return this.methods.get(name)?.method;
  }

  /** Method names, optionally only those callable in the current state (rpc_get_methods `current`). */
  names(currentOnly = false): string[] {
    const out: string[] = [];
    for (const [name, e] of this.methods) if (!currentOnly || e.states.includes(this.state)) out.push(name);
    return out.sort();
  }

  /** Whether `name` may run now. */
  allowedNow(name: string): boolean {
    return this.methods.get(name)?.states.includes(this.state) ?? false;
  }

  statesOf(name: string): readonly RpcState[] {
    return this.methods.get(name)?.states ?? [];
  }

  /**
   * Validates and runs a method. Throws RpcError for protocol failures (unknown method, bad params,
   * wrong state); handler errors propagate unchanged for the server to map.
   */
  async call(name: string, params: unknown, ctx: RpcContext): Promise<unknown> {
    const e = this.methods.get(name);
    if (!e) throw new RpcError(RpcCode.METHOD_NOT_FOUND, 'Method not found');
    if (!e.states.includes(this.state)) {
      throw new RpcError(
        RpcCode.INVALID_STATE,
        this.state === 'startup'
          ? 'Method may only be called after framework is initialized using framework_start_init RPC.'
          : 'Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC.',
      );
    }
    this.checkParams(e, params);
    return e.method.handler(params ?? {}, ctx);
  }

  /** Throws RpcError(-32602) naming the method and the offending param. */
  checkParams(e: Entry | string, params: unknown): void {
    const entry = typeof e === 'string' ? this.methods.get(e) : e;
    if (!entry) throw new RpcError(RpcCode.METHOD_NOT_FOUND, 'Method not found');
    const name = entry.method.name;
    if (entry.validate === null) {
      if (params !== undefined && params !== null && !(typeof params === 'object' && Object.keys(params as object).length === 0)) {
        throw new RpcError(RpcCode.INVALID_PARAMS, `${name} method requires no parameters`);
      }
      return;
    }
    const value = params ?? {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new RpcError(RpcCode.INVALID_PARAMS, `${name}: params must be an object`);
    }
    if (!entry.validate(value)) throw new RpcError(RpcCode.INVALID_PARAMS, describe(name, entry.validate.errors ?? []));
  }
}

function toJsonSchema(p: ParamsSchema): object {
  return {
    type: 'object',
    properties: p.properties,
    required: p.required ?? [],
    additionalProperties: p.allowUnknown ?? false,
  };
}

function describe(method: string, errors: ErrorObject[]): string {
  const e = errors[0];
  if (!e) return `${method}: invalid params`;
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  switch (e.keyword) {
    case 'additionalProperties':
      return `${method}: unknown param '${(e.params as { additionalProperty: string }).additionalProperty}'`;
    case 'required':
      return `${method}: missing required param '${(e.params as { missingProperty: string }).missingProperty}'`;
    case 'type':
      return `${method}: param '${path}' must be ${(e.params as { type: string }).type}`;
    default:
      return `${method}: param '${path || '(params)'}' ${e.message ?? 'is invalid'}`;
  }
}
