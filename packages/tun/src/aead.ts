// nativeAead(): ChaCha20-Poly1305 through the addon's Aead (OpenSSL's ChaCha20 and Poly1305 routines,
// or its EVP cipher keyed once: native/aead.h; writing straight into the caller's buffer; batch forms seal/open N
// packets in one call into C++). It satisfies @pocketproxy/protocol's AeadProvider structurally
// (this package does not import the protocol): pass it as `aead` to createResponder /
// createInitiator / new TransportSession. Nonce = 0^4 || u64le(counter), 16-byte tag, no AD —
// byte-identical to the node:crypto path (see test/aead.test.ts).
import { loadAddon, type NativeAead } from './native.js';

export type { NativeAead };

export interface NativeAeadProvider {
  readonly name: 'openssl-native';
  /** A key object for a 32-byte key (the bytes are copied into OpenSSL's context). */
  key(raw: Uint8Array): NativeAead;
}

let provider: NativeAeadProvider | undefined;

/** The native provider. Throws PP_ERR_TUN_ADDON_MISSING when the addon is not built. */
export function nativeAead(): NativeAeadProvider {
  if (provider) return provider;
  const { Aead } = loadAddon();
  provider = Object.freeze({ name: 'openssl-native' as const, key: (raw: Uint8Array) => new Aead(raw) });
  return provider;
}

/** The native provider, or undefined when the addon does not load (callers fall back to node:crypto). */
export function tryNativeAead(): NativeAeadProvider | undefined {
  try {
    return nativeAead();
  } catch {
    return undefined;
  }
}
