/* libFuzzer harness for the PNG path: header probe and full decode through the CPNG shim
   (libpng's longjmp error handling included). Build and run: make -C Fuzz png */
#include <stdint.h>
#include <stdlib.h>
#include "cpng.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cpng_info info;
    if (cpng_probe(data, size, &info) != CPNG_OK) return 0;
    size_t count = (size_t)info.width * info.height * (size_t)info.channels;
    if (count == 0 || count > (64u << 20)) return 0; /* Darkroom refuses these before decoding */
    uint8_t *pixels = malloc(count);
    if (!pixels) return 0;
    cpng_decode(data, size, pixels, count, &info);
    free(pixels);
    return 0;
}
