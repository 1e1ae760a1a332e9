# Sourced by install-test-deps.sh and arm-sysroot.sh: `apt-get update` that survives a Debian mirror
# caught mid-sync ("File has unexpected size … Mirror sync in progress?"): three tries, 20 s apart;
# after that it goes on with the indexes it has, and the install or download that follows fails
# loudly if a package really is not there.
apt_update() {
  local i
  for i in 1 2 3; do
    "$@" env DEBIAN_FRONTEND=noninteractive apt-get update -qq && return 0
    echo "apt-get update failed (try $i of 3)" >&2
    [ "$i" -lt 3 ] && sleep 20
  done
  echo "apt-get update kept failing; going on with the package indexes already here" >&2
  return 0
}
