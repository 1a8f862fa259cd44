# Built from source by node-gyp against the installed Node headers (npm config nodedir=/usr),
# never downloaded: `npm run build -w @pocketproxy/tun`.
{
  "targets": [
    {
      "target_name": "pp_tun",
      "sources": [
        "native/addon.cc",
        "native/aead.cc",
        "native/errno_error.cc",
        "native/fd_poller.cc",
        "native/tun_queue.cc",
        "native/udp_batch.cc",
        "native/udp_open.cc",
        "native/splice_relay.cc",
        "native/original_dst.cc",
        "native/tcp_flags.cc",
        "native/bind_device.cc",
        "native/offload.cc",
        "native/offload_napi.cc",
        "native/syn_stamp.cc",
        "native/conntrack.cc",
        "native/syn_stamp_napi.cc",
        "native/ack_filter.cc",
        "native/ack_filter_napi.cc",
        "native/lanes.cc",
        "native/carry_mss.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
