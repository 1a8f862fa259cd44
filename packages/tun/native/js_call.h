// Calling into JS from a libuv callback: there is no JS frame below us, so an exception thrown by
// the user's handler must be routed to process 'uncaughtException' (napi_fatal_exception) instead
// of unwinding into libuv. MakeCallback with an async context also drains nextTicks/microtasks.
#pragma once
#include <napi.h>

#include <initializer_list>

namespace pp {

inline void CallJs(Napi::Env env, const Napi::FunctionReference& fn, napi_value recv,
                   std::initializer_list<napi_value> args, const Napi::AsyncContext& ctx) {
  try {
    fn.MakeCallback(recv, args, ctx);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

}  // namespace pp
