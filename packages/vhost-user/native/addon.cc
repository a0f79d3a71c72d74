// @blockwork/vhost-user addon: vhost-user sockets (SCM_RIGHTS), eventfds, shared mappings.
// Raw system calls only; the TypeScript shape is declared in src/native.ts.
#include "common.h"

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("Connection", vhu::DefineConnection(env));
  exports.Set("Listener", vhu::DefineListener(env));
  exports.Set("EventFd", vhu::DefineEventFd(env));
  exports.Set("connectNonBlocking", Napi::Function::New(env, vhu::ConnectNonBlocking));
  vhu::InitMemory(env, exports);
  vhu::InitGuard(env, exports);
  return exports;
}

NODE_API_MODULE(blockwork_vhost_user, InitAll)
