/* libFuzzer harness for the JPEG path: header probe and full decode (full size and DCT-scaled)
   through the CJPEG shim (libjpeg's error_exit/longjmp included). Build and run: make -C Fuzz jpeg */
#include <stdint.h>
#include <stdlib.h>
#include "cjpeg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cjpeg_info info;
    for (int scale = 1; scale <= 8; scale *= 8) {
        if (cjpeg_probe_scaled(data, size, scale, &info) != CJPEG_OK) return 0;
        size_t count = (size_t)info.output_width * info.output_height * (size_t)info.channels;
        if (count == 0 || count > (64u << 20)) return 0;
        uint8_t *pixels = malloc(count);
        if (!pixels) return 0;
        cjpeg_decode(data, size, scale, pixels, count, &info);
        free(pixels);
    }
    return 0;
}
