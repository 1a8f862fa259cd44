import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeKey, encodeKey, generateKeyPair, generatePsk, publicKeyFromPrivate } from '../src/index.js';
import { isPPError } from '@pocketproxy/errors';

test('generated key pairs are 32 bytes and the public half derives from the private', () => {
  const kp = generateKeyPair();
  assert.equal(kp.privateKey.length, 32);
  assert.equal(kp.publicKey.length, 32);
  assert.deepEqual(publicKeyFromPrivate(kp.privateKey), kp.publicKey);
  assert.equal(generatePsk().length, 32);
});

test('base64 round trip, 44 characters, standard alphabet', () => {
  for (let i = 0; i < 50; i++) {
    const k = generateKeyPair().publicKey;
    const s = encodeKey(k);
    assert.equal(s.length, 44);
    assert.deepEqual(decodeKey(s), k);
  }
});

test('decodeKey rejects anything but a canonical 32-byte base64 key', () => {
  const good = encodeKey(Buffer.alloc(32, 7));
  const bad = [
    '',
    good.slice(1),
    `${good}=`,
    good.replace(/=$/, ''),
    good.replace(/.=$/, 'B='),
    ` ${good}`,
    `${Buffer.alloc(32, 255).toString('base64url')}=`,
    'A'.repeat(44),
  ];
  for (const s of bad) {
    assert.throws(
      () => decodeKey(s),
      (e) => isPPError(e) && e.code === 'PP_ERR_TUNNEL_KEY_INVALID',
      s,
    );
  }
  assert.throws(
    () => encodeKey(Buffer.alloc(31)),
    (e) => isPPError(e),
  );
});

test('known X25519 vector (RFC 7748 §6.1)', () => {
  const alicePriv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  assert.equal(
    publicKeyFromPrivate(alicePriv).toString('hex'),
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  );
});
