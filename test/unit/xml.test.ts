import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml, serialize } from '../../gateway/dav/xml.js';
import { KuraError } from '../../gateway/errors.js';

const badXml = (text: string) =>
  assert.throws(
    () => parseXml(text),
    (e: unknown) => e instanceof KuraError && e.code === 'bad-xml',
  );

describe('request XML parsing', () => {
  it('resolves namespaces, including the null namespace', () => {
    const el = parseXml('<D:propfind xmlns:D="DAV:"><D:prop><x xmlns=""/><y:z xmlns:y="urn:y"/></D:prop></D:propfind>');
    const prop = el.children[0];
    assert.deepEqual(
      prop?.children.map((c) => [c.ns, c.local]),
      [
        ['', 'x'],
        ['urn:y', 'z'],
      ],
    );
  });
  it('refuses DOCTYPE, so no entity expansion and no external entity is possible', () => {
    badXml('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb"><!ENTITY c "&b;&b;&b;&b;">]><a>&c;</a>');
    badXml('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>');
  });
  it('refuses deep nesting quickly', () => {
    const started = Date.now();
    badXml('<a>'.repeat(100_000) + '</a>'.repeat(100_000));
    assert.ok(Date.now() - started < 2000);
  });
  it('refuses malformed XML and undeclared prefixes', () => {
    badXml('<D:propfind xmlns:D="DAV:"><D:prop>');
    badXml('<D:propfind xmlns:D="DAV:"><bar:foo xmlns:bar=""/></D:propfind>');
    badXml('<x:a/>');
  });
  it('serialises a value with its namespaces so it round-trips', () => {
    const el = parseXml('<p xmlns="urn:a"><q xmlns="urn:b" xmlns:c="urn:c" c:attr="1">t &amp; u</q></p>');
    const again = parseXml(serialize(el));
    assert.equal(again.children[0]?.ns, 'urn:b');
    assert.deepEqual(again.children[0]?.attrs, [{ ns: 'urn:c', local: 'attr', value: '1' }]);
    assert.equal(again.children[0]?.text, 't & u');
  });
});
