#ifndef CPNG_H
#define CPNG_H
#include <stddef.h>
#include <stdint.h>

/* Outcome of a libpng call. libpng reports errors with longjmp; this target catches them. */
enum cpng_status { CPNG_OK = 0, CPNG_CORRUPT = 1, CPNG_TRUNCATED = 2, CPNG_TOO_LARGE = 3 };

typedef struct cpng_info {
    uint32_t width, height;
    int bit_depth;      /* as stored in the file: 1, 2, 4, 8 or 16 */
    int color_type;     /* PNG_COLOR_TYPE_* as stored */
    int interlaced;
    int has_trns;
    int channels;       /* of the 8-bit decoded output: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    char message[256];  /* libpng's error (or first warning) text */
} cpng_info;

/* Reads the header. Returns a cpng_status. */
int cpng_probe(const uint8_t *data, size_t size, cpng_info *info);

/* Decodes every row to 8 bits per channel (palette and low bit depths expanded, tRNS turned
   into alpha, 16-bit reduced to its high byte as Pillow does) and reads on to IEND, so the
   whole file is verified. `pixels` holds width*height*channels bytes. */
int cpng_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, cpng_info *info);

/* Encodes 8-bit gray (1), gray+alpha (2), RGB (3) or RGBA (4) pixels. On CPNG_OK, *out is a
   malloc'd buffer the caller frees with cpng_free. */
int cpng_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                uint8_t **out, size_t *out_size, char *message, size_t message_size);
void cpng_free(void *buffer);
#endif
