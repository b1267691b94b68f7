#!/bin/sh
# Builds the hello example as an OCI image layout (OCI image-spec v1.0: image-layout.md,
# manifest.md, config.md) from local files only: the static hello binary + busybox-static.
# Deterministic: fixed mtimes/owners, sorted tar, gzip -n, no timestamps in the JSON.
# usage: build-image.sh HELLO_BINARY BUSYBOX_BINARY OUT_DIR
set -eu
hello=$1
busybox=$2
out=$3

work="$out.work"
rm -rf "$work" "$out.tmp"
mkdir -p "$work/rootfs" "$out.tmp/blobs/sha256"
root="$work/rootfs"

umask 022
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/srv" "$root/tmp" "$root/proc" \
         "$root/sys" "$root/dev" "$root/run" "$root/root" "$root/home/app"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# objcopy from binutils keeps the build deterministic (no build path in the image).
objcopy --strip-all "$hello" "$root/usr/bin/hello"
chmod 0755 "$root/bin/busybox" "$root/usr/bin/hello"
cat > "$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:hello app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$root/etc/group" <<'GR'
root:x:0:
app:x:1000:
web:x:2000:app
nogroup:x:65534:
GR
echo "hello from the kiln example image" > "$root/srv/index.txt"
chown -R 0:0 "$root" 2>/dev/null || true
chown 1000:1000 "$root/home/app" 2>/dev/null || true

layer="$work/layer.tar"
tar --sort=name --mtime=@0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$layer" .
diff_id=$(sha256sum "$layer" | cut -d' ' -f1)
gzip -n -9 -c "$layer" > "$work/layer.tar.gz"
layer_digest=$(sha256sum "$work/layer.tar.gz" | cut -d' ' -f1)
layer_size=$(stat -c %s "$work/layer.tar.gz")
mv "$work/layer.tar.gz" "$out.tmp/blobs/sha256/$layer_digest"

config="$work/config.json"
printf '%s' '{"architecture":"amd64","os":"linux","config":{"User":"app","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GREETING=hello"],"Entrypoint":["/usr/bin/hello"],"WorkingDir":"/srv","ExposedPorts":{"9000/tcp":{}},"Labels":{"org.opencontainers.image.title":"kiln-hello"}},"rootfs":{"type":"layers","diff_ids":["sha256:'"$diff_id"'"]},"history":[{"created_by":"kiln examples/hello/build-image.sh"}]}' > "$config"
config_digest=$(sha256sum "$config" | cut -d' ' -f1)
config_size=$(stat -c %s "$config")
mv "$config" "$out.tmp/blobs/sha256/$config_digest"

manifest="$work/manifest.json"
printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'"$config_digest"'","size":'"$config_size"'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'"$layer_digest"'","size":'"$layer_size"'}]}' > "$manifest"
manifest_digest=$(sha256sum "$manifest" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$manifest")
mv "$manifest" "$out.tmp/blobs/sha256/$manifest_digest"

printf '%s' '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'"$manifest_digest"'","size":'"$manifest_size"',"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' > "$out.tmp/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$out.tmp/oci-layout"

rm -rf "$out" "$work"
mv "$out.tmp" "$out"
echo "hello image: $out (manifest sha256:$manifest_digest)"
