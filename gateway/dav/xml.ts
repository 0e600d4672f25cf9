import { parseXml as parseXmlText, XmlError, type XmlElement } from '../../browse/xml.js';
import { KuraError } from '../errors.js';

export { child, DAV_NS, escapeAttr, escapeText, serialize, xmlLimits, type XmlElement } from '../../browse/xml.js';

/** browse/xml.ts's strict parser, its refusals as KuraError('bad-xml') for the gateway's error mapping. */
export function parseXml(text: string): XmlElement {
  try {
    return parseXmlText(text);
  } catch (err) {
    throw err instanceof XmlError ? new KuraError('bad-xml', err.message) : err;
  }
}
