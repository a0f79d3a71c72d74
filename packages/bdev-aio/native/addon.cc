#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  blockwork_aio::InitAioContext(env, exports);
  blockwork_aio::InitFileOps(env, exports);
  return exports;
}

NODE_API_MODULE(blockwork_aio, Init)
