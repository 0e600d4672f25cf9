import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateIf, parseIfHeader, submittedTokens } from '../../gateway/dav/if-header.js';
import { KuraError } from '../../gateway/errors.js';

const TOKEN = 'opaquelocktoken:1234';
const locked = () => ({ etag: '"e1"', lockTokens: [TOKEN] });
const free = () => ({ etag: '"e1"', lockTokens: [] });

describe('If header (RFC 4918 §10.4)', () => {
  it('parses untagged and tagged lists with Not, tokens and entity tags', () => {
    const lists = parseIfHeader(`</files/a> (<${TOKEN}> ["e1"]) (Not <DAV:no-lock>)`);
    assert.equal(lists.length, 2);
    assert.equal(lists[0]?.resource, '/files/a');
    assert.deepEqual(lists[1]?.conditions, [{ not: true, token: 'DAV:no-lock', etag: undefined }]);
  });
  it('holds when any list holds, fails when every list fails', () => {
    assert.equal(evaluateIf(parseIfHeader(`(<${TOKEN}>)`), locked), true);
    assert.equal(evaluateIf(parseIfHeader(`(<${TOKEN}x>) (Not <DAV:no-lock>)`), locked), true);
    assert.equal(evaluateIf(parseIfHeader('(<DAV:no-lock>)'), free), false);
    assert.equal(evaluateIf(parseIfHeader(`(<${TOKEN}> ["bad"]) (Not <DAV:no-lock> ["bad"])`), locked), false);
    assert.equal(evaluateIf(parseIfHeader('(["e1"])'), free), true);
  });
  it('lists the submitted tokens but not negated ones', () => {
    assert.deepEqual([...submittedTokens(parseIfHeader(`(<${TOKEN}>) (Not <opaquelocktoken:x>)`))], [TOKEN]);
  });
  it('refuses malformed headers with bad-request instead of guessing', () => {
    for (const h of ['(<foo', 'garbage', '()', '(<not a uri>)', '<http://x/a>', '(["unterminated)']) {
      assert.throws(
        () => parseIfHeader(h),
        (e: unknown) => e instanceof KuraError && e.code === 'bad-request',
        h,
      );
    }
  });
});
