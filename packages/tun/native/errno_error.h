// Turns a failed syscall into a JS Error carrying `code` ("EPERM"), `errno` and `syscall`, the same
// shape Node's own system errors have, so the TypeScript side can map it to a PP_ERR_TUN_* code.
#pragma once
#include <napi.h>

namespace pp {

Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err);

}  // namespace pp
