#!/usr/bin/env bash
# Regenerates the SOPS documents the sops provider's unit tests decrypt (providers/tests/fixtures/sops/): plaintext
# documents in every format SOPS writes, encrypted by the real `sops` CLI (e2e/build-sops.sh) for test-only age keys.
# The tests compare each decryption with the plaintext beside it, so any regeneration keeps them valid.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$("$here/../build-sops.sh")
out="$here/../../providers/tests/fixtures/sops"
export PATH="$bin:$PATH" SOPS_DISABLE_VERSION_CHECK=1
mkdir -p "$out"
cd "$out"
for k in key1 key2 key3; do
  [ -s "$k.txt" ] || age-keygen -o "$k.txt" 2>/dev/null
done
r() { age-keygen -y "$1.txt"; }
R1=$(r key1) R2=$(r key2) R3=$(r key3)

cat > plain/basic.yaml <<'YAML'
# a comment, encrypted and left out of the MAC
db:
  user: admin
  password: s3cr3t
  port: 5432
  ratio: 1.5
  "on": true
  nothing: null
  empty: ""
list:
  - one
  - two: 2
  - [nested, 3]
tls.crt: |
  -----BEGIN CERTIFICATE-----
  MIIB
  -----END CERTIFICATE-----
plain_unencrypted: visible
YAML
printf '{"a":"x","n":{"b":1,"c":[true,1.0,"y"]},"e":"","z":null}\n' > plain/basic.json
printf 'A=1\n# a comment\nB=hello world\nC="quoted"\nEMPTY=\n' > plain/basic.env
printf 'top=1\n[sec]\nk=v\nk2 = v two\n[other]\nx=y\n' > plain/basic.ini

for f in basic.yaml basic.json basic.env basic.ini; do
  sops encrypt --age "$R1,$R2" "plain/$f" > "$f"
done
# Only data/stringData encrypted (a Secret manifest), and the MAC over encrypted values only.
cat > plain/regex.yaml <<'YAML'
apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: s3cr3t
YAML
cat > sops-regex.yaml <<YAML
creation_rules:
  - age: $R1
    encrypted_regex: ^(data|stringData)$
    mac_only_encrypted: true
YAML
sops --config sops-regex.yaml encrypt plain/regex.yaml > regex.yaml
rm sops-regex.yaml
# Each rule alone: only data/stringData encrypted; the MAC over encrypted values only.
cp plain/regex.yaml plain/regex-only.yaml
printf 'creation_rules:\n  - age: %s\n    encrypted_regex: ^(data|stringData)$\n' "$R1" > sops-rule.yaml
sops --config sops-rule.yaml encrypt plain/regex-only.yaml > regex-only.yaml
cp plain/basic.yaml plain/maconly.yaml
printf 'creation_rules:\n  - age: %s\n    mac_only_encrypted: true\n' "$R1" > sops-rule.yaml
sops --config sops-rule.yaml encrypt plain/maconly.yaml > maconly.yaml
rm sops-rule.yaml
# Three key groups, any two of which recover the data key.
cat > sops-groups.yaml <<YAML
creation_rules:
  - shamir_threshold: 2
    key_groups:
      - age: [$R1]
      - age: [$R2]
      - age: [$R3]
YAML
cp plain/basic.yaml plain/groups.yaml
sops --config sops-groups.yaml encrypt plain/groups.yaml > groups.yaml
rm sops-groups.yaml
echo "fixtures written to $out" >&2
