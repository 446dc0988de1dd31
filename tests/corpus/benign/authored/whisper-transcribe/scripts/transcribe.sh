#!/usr/bin/env bash
set -euo pipefail
if [[ -z "${OPENAI_API_KEY:-}" ]]; then
  echo "OPENAI_API_KEY is not set" >&2
  exit 2
fi
in="$1"; shift
lang=""; out="${in%.*}.txt"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --language) lang="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
curl -sS --fail https://api.openai.com/v1/audio/transcriptions \
  -H "Authorization: Bearer $OPENAI_API_KEY" \
  -F model=whisper-1 -F "file=@${in}" ${lang:+-F "language=${lang}"} -F response_format=json \
  | jq -r .text > "$out"
echo "wrote $out"
