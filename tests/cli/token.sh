#!/usr/bin/env bash
# todoctl token: minting HS256 development tokens and verifying tokens.
# Tokens are decoded and checked independently with python3's stdlib
# (base64, json, hmac); RS256 tokens are signed with the openssl CLI.
#   bash token.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?build dir}
TODOCTL=$BUILD/bin/todoctl
# Nothing from the caller's environment.
unset TE_JWT_SECRET TE_JWT_SECRET_FILE TE_JWT_PUBLIC_KEY_FILE TE_JWT_ISSUER TE_JWT_AUDIENCE \
    TE_JWT_LEEWAY

. "$(dirname "$0")/lib.sh"
expect_err() { # substring description
    grep -qF -- "$1" "$TMP/err" || fail "$2: stderr lacks '$1': $(cat "$TMP/err")"
}
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

SECRET=cli-test-secret-0123456789abcdefghijkl
OTHER=cli-test-secret-0123456789abcdefghijkX

# decode TOKEN [SECRET]: prints "alg typ sub iat nbf exp iss aud" decoded by python3,
# and checks the HS256 signature with SECRET when $2 is given.
decode() {
    python3 - "$@" <<'EOF'
import base64, hashlib, hmac, json, sys
tok = sys.argv[1]
h, p, s = tok.split(".")
def d(x):
    assert "=" not in x
    return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
hdr, pay = json.loads(d(h)), json.loads(d(p))
if len(sys.argv) > 2:
    mac = hmac.new(sys.argv[2].encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(mac, d(s)):
        sys.exit("signature does not verify")
print(hdr.get("alg"), hdr.get("typ"), pay.get("sub"), pay.get("iat"), pay.get("nbf"),
      pay.get("exp"), pay.get("iss", "-"), pay.get("aud", "-"))
EOF
}

# make HEADER_JSON PAYLOAD_JSON SECRET: an HS256-signed token built by python3
make() {
    python3 - "$@" <<'EOF'
import base64, hashlib, hmac, sys
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
inp = b(sys.argv[1].encode()) + "." + b(sys.argv[2].encode())
print(inp + "." + b(hmac.new(sys.argv[3].encode(), inp.encode(), hashlib.sha256).digest()))
EOF
}

now=$(date +%s)

# ---- mint with TE_JWT_SECRET, verify ---------------------------------------------
export TE_JWT_SECRET=$SECRET
run "$TODOCTL" token --user alice
if expect_rc 0 "mint"; then
    tok=$(cat "$TMP/out")
    [ "$(wc -l <"$TMP/out")" -eq 1 ] || fail "mint: not one line"
    [[ $tok =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$ ]] || fail "mint: shape '$tok'"
    read -r alg typ sub iat nbf exp iss aud < <(decode "$tok" "$SECRET") || fail "python3 decode"
    [ "$alg $typ" = "HS256 JWT" ] || fail "header: $alg $typ"
    [ "$sub" = alice ] || fail "sub: '$sub'"
    [ "$nbf" = "$iat" ] || fail "nbf $nbf != iat $iat"
    [ $((exp - iat)) -eq 3600 ] || fail "default ttl: exp - iat = $((exp - iat))"
    [ $((iat - now)) -ge -5 ] && [ $((iat - now)) -le 5 ] || fail "iat $iat is not now ($now)"
    [ "$iss $aud" = "- -" ] || fail "iss/aud without --issuer/--audience: $iss $aud"

    run "$TODOCTL" token verify "$tok"
    expect_rc 0 "verify (argument)" && {
        grep -qx "sub: alice" "$TMP/out" || fail "verify: no 'sub: alice'"
        grep -qE "^exp: $exp \([0-9-]{10}T[0-9:]{8}Z\)$" "$TMP/out" || fail "verify: exp line"
    }
    run "$TODOCTL" token verify - <<<"$tok"
    expect_rc 0 "verify (stdin via -)"
    run "$TODOCTL" token verify <<<"  $tok  "
    expect_rc 0 "verify (stdin, white space around)"

    # wrong secret -> 1, and neither the token nor a secret on stderr
    TE_JWT_SECRET=$OTHER run "$TODOCTL" token verify "$tok"
    expect_rc 1 "verify with the wrong secret" && expect_err "bad signature" "wrong secret"
    grep -qF -- "$tok" "$TMP/err" && fail "the token was echoed"
    grep -qF -- "${tok%%.*}" "$TMP/err" && fail "part of the token was echoed"
    grep -qF -- "$OTHER" "$TMP/err" "$TMP/out" && fail "the secret was echoed"

    # tampered payload (python re-encodes another sub, keeps the signature)
    evil=$(python3 -c '
import base64,json,sys
h,p,s=sys.argv[1].split(".")
d=json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))
d["sub"]="admin"
print(h+"."+base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()+"."+s)' "$tok")
    run "$TODOCTL" token verify "$evil"
    expect_rc 1 "tampered payload" && expect_err "bad signature" "tampered payload"
    # padding
    run "$TODOCTL" token verify "$tok="
    expect_rc 1 "padded token" && expect_err "malformed token" "padded token"
fi

# ---- secret sources -------------------------------------------------------------
printf '%s\n' "$SECRET" >"$TMP/secret"
unset TE_JWT_SECRET
run "$TODOCTL" token --user bob --secret-file "$TMP/secret" --ttl 60
if expect_rc 0 "mint --secret-file (trailing newline stripped)"; then
    tok=$(cat "$TMP/out")
    read -r alg typ sub iat nbf exp iss aud < <(decode "$tok" "$SECRET") || fail "decode (file)"
    [ "$sub" = bob ] || fail "sub (file): $sub"
    [ $((exp - iat)) -eq 60 ] || fail "--ttl 60: exp - iat = $((exp - iat))"
    TE_JWT_SECRET_FILE=$TMP/secret run "$TODOCTL" token verify "$tok"
    expect_rc 0 "verify with TE_JWT_SECRET_FILE"
    TE_JWT_SECRET=$SECRET run "$TODOCTL" token verify "$tok"
    expect_rc 0 "verify with TE_JWT_SECRET"
    # TE_JWT_SECRET_FILE wins over TE_JWT_SECRET; --secret-file over both
    TE_JWT_SECRET_FILE=$TMP/secret TE_JWT_SECRET=$OTHER run "$TODOCTL" token verify "$tok"
    expect_rc 0 "TE_JWT_SECRET_FILE before TE_JWT_SECRET"
    printf '%s' "$OTHER" >"$TMP/other"
    TE_JWT_SECRET_FILE=$TMP/secret run "$TODOCTL" token verify --secret-file "$TMP/other" "$tok"
    expect_rc 1 "--secret-file before TE_JWT_SECRET_FILE"
fi
printf '%s\n\n' "$SECRET" >"$TMP/secret2" # only one newline is stripped
run "$TODOCTL" token --user bob --secret-file "$TMP/secret2"
expect_rc 0 "mint with two trailing newlines" &&
    { decode "$(cat "$TMP/out")" "$SECRET" >/dev/null 2>&1 && fail "two newlines: both stripped"; }
TE_JWT_SECRET_FILE=$TMP/secret run "$TODOCTL" token --user carol
expect_rc 0 "mint with TE_JWT_SECRET_FILE" && { decode "$(cat "$TMP/out")" "$SECRET" >/dev/null ||
    fail "TE_JWT_SECRET_FILE: signature"; }

# ---- no secret / bad secret: exit 2 ---------------------------------------------
run "$TODOCTL" token --user alice
expect_rc 2 "no secret" && expect_err "TE_JWT_SECRET" "no secret message"
[ -s "$TMP/out" ] && fail "no secret: printed a token"
run "$TODOCTL" token verify "a.b.c"
expect_rc 2 "verify without a secret or key"
TE_JWT_SECRET=short run "$TODOCTL" token --user alice
expect_rc 2 "short secret" && expect_err "at least 32" "short secret message"
grep -q short "$TMP/err" && fail "short secret echoed"
run "$TODOCTL" token --user alice --secret-file "$TMP/nope"
expect_rc 2 "missing secret file" && expect_err "cannot open" "missing secret file message"
TE_JWT_SECRET_FILE=$TMP/nope TE_JWT_SECRET=$SECRET run "$TODOCTL" token --user alice
expect_rc 2 "TE_JWT_SECRET_FILE names a missing file"

# ---- usage ------------------------------------------------------------------------
export TE_JWT_SECRET=$SECRET
run "$TODOCTL" token
expect_rc 2 "no arguments"
run "$TODOCTL" token --ttl 60
expect_rc 2 "no --user"
run "$TODOCTL" token --user a --ttl 0
expect_rc 2 "--ttl 0"
run "$TODOCTL" token --user a --ttl 1h
expect_rc 2 "--ttl 1h"
run "$TODOCTL" token --user ""
expect_rc 2 "empty --user"
run "$TODOCTL" token --user "$(printf 'a%.0s' {1..129})"
expect_rc 2 "--user of 129 bytes"
run "$TODOCTL" token --user a --bogus
expect_rc 2 "unknown option"
run "$TODOCTL" token --user a --user b
expect_rc 2 "--user twice"
run "$TODOCTL" token verify a.b.c d.e.f
expect_rc 2 "two tokens"
run "$TODOCTL" token verify --leeway -1 a.b.c
expect_rc 2 "negative --leeway"
run "$TODOCTL" token help
expect_rc 0 "token help" && grep -q "todoctl token verify" "$TMP/out" || fail "token help text"
run "$TODOCTL" help
grep -q "token --user" "$TMP/out" || fail "todoctl help lists token"

# ---- issuer / audience ---------------------------------------------------------------
run "$TODOCTL" token --user dave --issuer https://auth.example --audience todo-api
if expect_rc 0 "mint with iss/aud"; then
    tok=$(cat "$TMP/out")
    read -r alg typ sub iat nbf exp iss aud < <(decode "$tok" "$SECRET")
    [ "$iss $aud" = "https://auth.example todo-api" ] || fail "iss/aud: $iss $aud"
    run "$TODOCTL" token verify --issuer https://auth.example --audience todo-api "$tok"
    expect_rc 0 "verify iss/aud"
    run "$TODOCTL" token verify --audience todo-sync "$tok"
    expect_rc 1 "wrong audience" && expect_err "wrong audience" "wrong audience message"
    TE_JWT_ISSUER=https://other.example run "$TODOCTL" token verify "$tok"
    expect_rc 1 "wrong issuer (TE_JWT_ISSUER)" && expect_err "wrong issuer" "wrong issuer message"
fi
TE_JWT_AUDIENCE=todo-api run "$TODOCTL" token --user erin
expect_rc 0 "mint with TE_JWT_AUDIENCE" && {
    read -r alg typ sub iat nbf exp iss aud < <(decode "$(cat "$TMP/out")")
    [ "$aud" = todo-api ] || fail "TE_JWT_AUDIENCE not used: $aud"
}

# ---- tokens built by python3 ---------------------------------------------------------
HS='{"alg":"HS256","typ":"JWT"}'
tok=$(make "$HS" "{\"sub\":\"frank\",\"exp\":$((now + 600))}" "$SECRET")
run "$TODOCTL" token verify "$tok"
expect_rc 0 "python-made token" && grep -qx "sub: frank" "$TMP/out" || fail "python-made sub"
tok=$(make "$HS" "{\"sub\":\"frank\",\"exp\":$((now - 120))}" "$SECRET")
run "$TODOCTL" token verify "$tok"
expect_rc 1 "expired" && expect_err "token expired" "expired message"
run "$TODOCTL" token verify --leeway 600 "$tok"
expect_rc 0 "expired within --leeway 600"
TE_JWT_LEEWAY=600 run "$TODOCTL" token verify "$tok"
expect_rc 0 "expired within TE_JWT_LEEWAY=600"
tok=$(make "$HS" "{\"exp\":$((now + 600))}" "$SECRET")
run "$TODOCTL" token verify "$tok"
expect_rc 1 "missing sub" && expect_err "missing sub" "missing sub message"
tok=$(make '{"alg":"none"}' "{\"sub\":\"frank\",\"exp\":$((now + 600))}" "$SECRET")
run "$TODOCTL" token verify "$tok"
expect_rc 1 "alg none (signed)" && expect_err "algorithm not allowed" "alg none"
run "$TODOCTL" token verify "${tok%.*}."
expect_rc 1 "alg none (unsigned)" && expect_err "algorithm not allowed" "alg none unsigned"

# ---- RS256 with the openssl CLI ------------------------------------------------------
if command -v openssl >/dev/null; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rsa.pem" 2>/dev/null
    openssl pkey -in "$TMP/rsa.pem" -pubout -out "$TMP/rsa.pub" 2>/dev/null
    rs_input=$(python3 -c '
import base64,sys
b=lambda x: base64.urlsafe_b64encode(x.encode()).rstrip(b"=").decode()
print(b(sys.argv[1])+"."+b(sys.argv[2]))' '{"alg":"RS256","typ":"JWT"}' \
        "{\"sub\":\"grace\",\"exp\":$((now + 600))}")
    sig=$(printf '%s' "$rs_input" | openssl dgst -sha256 -sign "$TMP/rsa.pem" -binary |
        python3 -c 'import base64,sys
print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).rstrip(b"=").decode())')
    run "$TODOCTL" token verify --public-key "$TMP/rsa.pub" "$rs_input.$sig"
    expect_rc 0 "RS256 with --public-key" && grep -qx "sub: grace" "$TMP/out" || fail "RS256 sub"
    unset TE_JWT_SECRET
    TE_JWT_PUBLIC_KEY_FILE=$TMP/rsa.pub run "$TODOCTL" token verify "$rs_input.$sig"
    expect_rc 0 "RS256 with TE_JWT_PUBLIC_KEY_FILE"
    # key confusion: HS256 signed with the public key's PEM text as the secret
    tok=$(make "$HS" "{\"sub\":\"mallory\",\"exp\":$((now + 600))}" "$(cat "$TMP/rsa.pub")")
    run "$TODOCTL" token verify --public-key "$TMP/rsa.pub" "$tok"
    expect_rc 1 "key confusion" && expect_err "algorithm not allowed" "key confusion message"
    # --public-key alone ignores TE_JWT_SECRET from the environment
    tok=$(make "$HS" "{\"sub\":\"frank\",\"exp\":$((now + 600))}" "$SECRET")
    TE_JWT_SECRET=$SECRET run "$TODOCTL" token verify --public-key "$TMP/rsa.pub" "$tok"
    expect_rc 1 "--public-key without --secret-file: HS256 refused"
    run "$TODOCTL" token verify --public-key "$TMP/rsa.pub" --secret-file "$TMP/secret" "$tok"
    expect_rc 0 "--public-key with --secret-file: HS256 accepted"
    # a private key is not a public key; a 1024-bit key is too short
    run "$TODOCTL" token verify --public-key "$TMP/rsa.pem" "$tok"
    expect_rc 2 "private key as --public-key" && expect_err "private key" "private key message"
    grep -q "PRIVATE" "$TMP/err" && grep -q "MII" "$TMP/err" && fail "key material echoed"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null |
        openssl pkey -pubout -out "$TMP/rsa1024.pub" 2>/dev/null
    run "$TODOCTL" token verify --public-key "$TMP/rsa1024.pub" "$tok"
    expect_rc 2 "1024-bit RSA key" && expect_err "2048" "short RSA key message"
    run "$TODOCTL" token verify --public-key "$TMP/nope.pub" "$tok"
    expect_rc 2 "missing --public-key file"
else
    echo "note: openssl CLI not available; RS256 checks skipped"
fi

echo "token.sh: $checks commands, $failures failure(s)"
[ "$failures" -eq 0 ]
