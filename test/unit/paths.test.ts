import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodePath, parseUrlPath } from '../../gateway/storage/paths.js';
import { KuraError } from '../../gateway/errors.js';

const refused = (raw: string) =>
  assert.throws(
    () => parseUrlPath(raw),
    (e: unknown) => e instanceof KuraError && e.code === 'bad-path',
    raw,
  );

describe('URL path validation', () => {
  it('splits and decodes ordinary paths', () => {
    assert.deepEqual(parseUrlPath('/files/a%20b/c.txt'), ['files', 'a b', 'c.txt']);
    assert.deepEqual(parseUrlPath('/files//x/?q=1'), ['files', 'x']);
  });
  it('refuses dot segments in every spelling', () => {
    for (const p of ['/files/../x', '/files/./x', '/files/%2e%2e/x', '/files/%2E%2e/x', '/files/%2e/x']) refused(p);
  });
  it('refuses encoded separators, backslashes, NUL and control characters', () => {
    for (const p of ['/files/a%2fb', '/files/a%2Fb', '/files/a%5cb', '/files/a\\b', '/files/a%00b', '/files/a%0ab']) refused(p);
  });
  it('refuses invalid percent escapes and overlong or invalid UTF-8', () => {
    for (const p of ['/%ZZ', '/files/%', '/files/%c0%ae%c0%ae', '/files/%c0%af', '/files/%ff']) refused(p);
  });
  it('normalises names to NFC so NFC and NFD reach the same file', () => {
    const nfd = encodeURIComponent('e\u0301t\u00e9'.normalize('NFD'));
    const nfc = encodeURIComponent('\u00e9t\u00e9');
    assert.deepEqual(parseUrlPath(`/files/${nfd}`), parseUrlPath(`/files/${nfc}`));
  });
  it('encodes segments back into a URL with a trailing slash for collections', () => {
    assert.equal(encodePath(['files', 'a b', 'ü'], true), '/files/a%20b/%C3%BC/');
    assert.equal(encodePath([], true), '/');
  });
});
