# registry-team-a: read team-a's registry credential (KV version 2 under `secret/`), and
# nothing else.
path "secret/data/registry/team-a" {
  capabilities = ["read"]
}
