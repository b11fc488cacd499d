#!/bin/sh
# The runtime image's whole file system, gathered in the build stage: the Python interpreter, its
# standard library (without tests, GUI, packaging tools and the static libpython the compiler
# needed), the exporter's virtual environment, the shared libraries every one of their ELF files
# loads, and a passwd that names nobody (65534).
# No shell and no package manager: nothing in the image runs but the exporter.
set -eu
out=$1
python=$(readlink -f /usr/bin/python3)   # /usr/bin/python3.11
version=$(basename "$python")
mkdir -p "$out/usr/bin" "$out/etc" "$out/opt" "$out/tmp"
chmod 1777 "$out/tmp"
cp -a "$python" "$out/usr/bin/"
ln -s "$version" "$out/usr/bin/python3"
tar -C / -cf - \
  --exclude="usr/lib/$version/test" --exclude="usr/lib/$version/idlelib" \
  --exclude="usr/lib/$version/tkinter" --exclude="usr/lib/$version/turtledemo" \
  --exclude="usr/lib/$version/ensurepip" --exclude="usr/lib/$version/lib2to3" \
  --exclude="usr/lib/$version/pydoc_data" --exclude="usr/lib/$version/venv" \
  --exclude="usr/lib/$version/config-*" \
  "usr/lib/$version" | tar -C "$out" -xf -
cp -a /opt/smtp-reply-exporter "$out/opt/"
# ldd names each library where the loader finds it ("libc.so.6 => /lib/.../libc.so.6") and the loader
# itself by its own path; copy each (not the symlink) to that path.
find "$out" -type f \( -name '*.so*' -o -perm -u+x \) -exec ldd {} \; 2>/dev/null \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u \
  | while read -r lib; do cp -L --parents "$lib" "$out"; done
printf 'root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' > "$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$out/etc/group"
