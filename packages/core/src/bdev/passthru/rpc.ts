import type { RpcMethod } from '../../rpc/types';
import { NAME_PARAM, UUID_PARAM, uuidOrRandom } from '../common-params';
import type { PassthruBdevModule } from './passthru-module';

export function passthruRpcMethods(m: PassthruBdevModule): RpcMethod[] {
  return [
    {
      name: 'bdev_passthru_create',
      description: 'Create a passthru bdev on a base bdev (claims it; waits for the base if it does not exist yet); returns its name',
      params: {
        properties: {
          base_bdev_name: { type: 'string', minLength: 1, description: 'Name of the base bdev' },
          name: NAME_PARAM,
          uuid: UUID_PARAM,
        },
        required: ['base_bdev_name', 'name'],
      },
      handler: (p: { base_bdev_name: string; name: string; uuid?: string }) => m.create(p.name, p.base_bdev_name, uuidOrRandom(p.uuid)),
    },
    {
      name: 'bdev_passthru_delete',
      description: 'Delete a passthru bdev (releases its base)',
      params: { properties: { name: NAME_PARAM }, required: ['name'] },
      handler: async (p: { name: string }) => {
        await m.delete(p.name);
        return true;
      },
    },
  ];
}
