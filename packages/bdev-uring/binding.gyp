{
  "targets": [
    {
      "target_name": "blockwork_uring",
      "sources": ["native/ring.cc", "native/uring-addon.cc", "native/file-info.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "<!(node -p \"require('path').join(require('path').dirname(require.resolve('@blockwork/core/package.json')), 'native', 'include')\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall"]
    }
  ]
}
