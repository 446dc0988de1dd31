const { execSync } = require('child_process');
const { CommitParser } = require('conventional-commits-parser');

const parser = new CommitParser();
const log = execSync('git log --pretty=format:%s%n%b%n==END==', { encoding: 'utf8' });
const groups = { feat: [], fix: [] };
for (const raw of log.split('==END==')) {
  const c = parser.parse(raw.trim());
  if (c.type && groups[c.type]) groups[c.type].push(c.subject);
}
console.log('# Changelog\n\n## Features\n' + groups.feat.map((s) => `- ${s}`).join('\n'));
console.log('\n## Fixes\n' + groups.fix.map((s) => `- ${s}`).join('\n'));
