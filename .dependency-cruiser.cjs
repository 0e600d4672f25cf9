/** The import rules between Kura's parts (STYLE.md habit 1), checked by `npm test`. */
module.exports = {
  forbidden: [
    {
      name: 'storage-is-the-bottom-layer',
      comment: 'gateway/storage never imports the DAV front, policy, express or passport',
      severity: 'error',
      from: { path: '^gateway/storage/' },
      to: { path: '^(gateway/(dav|policy)/|node_modules/(express|passport|passport-[^/]+)/)' },
    },
    {
      name: 'policy-does-not-speak-dav',
      comment: 'gateway/policy decides; it never imports the DAV front',
      severity: 'error',
      from: { path: '^gateway/policy/' },
      to: { path: '^gateway/dav/' },
    },
    {
      name: 'agent-never-imports-the-gateway',
      severity: 'error',
      from: { path: '^agent/' },
      to: { path: '^(gateway|admin-ui)/' },
    },
    {
      name: 'format-stands-alone',
      comment: 'format/ owns the bytes and is read by both sides; it imports neither',
      severity: 'error',
      from: { path: '^format/' },
      to: { path: '^(gateway|agent|admin-ui|cli)/' },
    },
    {
      name: 'browse-is-shared-by-both-sides',
      comment: 'browse/ (the read-only snapshot view) is used by the gateway and by `kura mount`; it imports neither',
      severity: 'error',
      from: { path: '^browse/' },
      to: { path: '^(gateway|agent|admin-ui|cli)/' },
    },
    {
      name: 'common-stands-alone',
      comment: 'common/ holds small helpers every part may use (writing a file atomically); it imports no part',
      severity: 'error',
      from: { path: '^common/' },
      to: { path: '^(gateway|agent|admin-ui|cli|browse|format)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|node_modules)/' },
  },
};
