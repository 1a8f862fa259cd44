// The server key (Ed25519) that endorses relay keys, and its fingerprint (src/endorsement.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { isPPError } from '@pocketproxy/errors';
import {
  checkRelayKeyEndorsement,
  encodeKey,
  FINGERPRINT_PATTERN,
  generateKeyPair,
  relayKeyStatement,
  serverKeyFingerprint,
  serverKeyFromSeed,
} from '../src/index.js';

const seed = Buffer.alloc(32, 1);

test('server key: deterministic from its seed; fingerprint is 22 base64url characters of SHA-256(public key)', () => {
  const a = serverKeyFromSeed(seed);
  const b = serverKeyFromSeed(Buffer.from(seed));
  assert.equal(a.publicKey, b.publicKey);
  assert.equal(a.fingerprint, b.fingerprint);
  assert.match(a.fingerprint, FINGERPRINT_PATTERN);
  assert.equal(
    a.fingerprint,
    createHash('sha256').update(Buffer.from(a.publicKey, 'base64')).digest().subarray(0, 16).toString('base64url'),
  );
  assert.equal(serverKeyFingerprint(a.publicKey), a.fingerprint);
  assert.notEqual(serverKeyFromSeed(Buffer.alloc(32, 2)).fingerprint, a.fingerprint);
  // RFC 8032 test 1: the seed 9d61…7f60 has the public key d75a…511a.
  const rfc = serverKeyFromSeed(Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'));
  assert.equal(
    Buffer.from(rfc.publicKey, 'base64').toString('hex'),
    'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  );
  assert.throws(
    () => serverKeyFromSeed(Buffer.alloc(31)),
    (e) => isPPError(e) && e.code === 'PP_ERR_TUNNEL_KEY_INVALID',
  );
  assert.throws(
    () => serverKeyFingerprint('not a key'),
    (e) => isPPError(e) && e.code === 'PP_ERR_TUNNEL_KEY_INVALID',
  );
});

test('endorsement: a standard Ed25519 signature of the statement; verifies for exactly that key, device and server key', () => {
  const sk = serverKeyFromSeed(seed);
  const relay = encodeKey(generateKeyPair().publicKey);
  const other = encodeKey(generateKeyPair().publicKey);
  const e = sk.endorseRelayKey('dev_abcdefghij', relay);
  assert.match(e, /^[A-Za-z0-9+/]{86}==$/);
  assert.equal(
    relayKeyStatement('dev_abcdefghij', relay).toString(),
    `pocketproxy relay-key v1\ndev_abcdefghij\n${relay}`,
  );
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(sk.publicKey, 'base64')]);
  assert.ok(
    verify(
      null,
      relayKeyStatement('dev_abcdefghij', relay),
      createPublicKey({ key: spki, format: 'der', type: 'spki' }),
      Buffer.from(e, 'base64'),
    ),
  );

  assert.equal(checkRelayKeyEndorsement(sk.publicKey, 'dev_abcdefghij', relay, e), true);
  assert.equal(checkRelayKeyEndorsement(sk.publicKey, 'dev_abcdefghij', other, e), false, 'another relay key');
  assert.equal(checkRelayKeyEndorsement(sk.publicKey, 'dev_other00000', relay, e), false, 'another device');
  assert.equal(
    checkRelayKeyEndorsement(serverKeyFromSeed(Buffer.alloc(32, 9)).publicKey, 'dev_abcdefghij', relay, e),
    false,
    'another server key',
  );
  const flipped = Buffer.from(e, 'base64');
  flipped[10]! ^= 1;
  for (const bad of [flipped.toString('base64'), '', null, undefined, 42, e.slice(1), `${e}=`, `${'A'.repeat(86)}==`]) {
    assert.equal(checkRelayKeyEndorsement(sk.publicKey, 'dev_abcdefghij', relay, bad), false, String(bad));
  }
  assert.equal(checkRelayKeyEndorsement('garbage', 'dev_abcdefghij', relay, e), false);
});
