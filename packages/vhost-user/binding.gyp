{
  "targets": [
    {
      "target_name": "blockwork_vhost_user",
      "sources": ["native/addon.cc", "native/connection.cc", "native/listener.cc", "native/eventfd.cc", "native/memory.cc", "native/guard.cc", "native/dirty-log.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"]
    }
  ]
}
