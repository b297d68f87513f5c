# cmake -DIN=file -DOUT=header.h -DNAME=symbol -P embed-bin.cmake
# Writes `static const unsigned char NAME[] = {...};` and NAME_SIZE for a
# binary file (the CUDA kernels' fatbin), at build time.
file(READ "${IN}" _hex HEX)
string(LENGTH "${_hex}" _len)
math(EXPR _size "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _hex "${_hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" _hex "${_hex}")
string(TOUPPER "${NAME}" _upper)
file(WRITE "${OUT}.tmp"
"/* Generated at build time by cmake/scripts/embed-bin.cmake. */
#define ${_upper}_SIZE ${_size}u
static const unsigned char ${NAME}[] __attribute__((aligned(16))) = {
${_hex}};
")
file(RENAME "${OUT}.tmp" "${OUT}")
