const chroma = require('chroma-js');
const fs = require('fs');
const words = (process.argv[2] || '').split(',').map((w) => w.trim());
const base = words.includes('ocean') ? '#0077be' : '#6b21a8';
const scale = chroma.scale([chroma(base).brighten(2), base, chroma(base).darken(2)]).colors(9);
const colors = Object.fromEntries(scale.map((c, i) => [String((i + 1) * 100), c]));
fs.writeFileSync('tailwind.config.js', `module.exports = { theme: { extend: { colors: { brand: ${JSON.stringify(colors)} } } } };\n`);
