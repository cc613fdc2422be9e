#ifndef CJPEG_H
#define CJPEG_H
#include <stddef.h>
#include <stdint.h>

/* Outcome of a libjpeg call. libjpeg reports errors through error_exit, which this target
   turns into a longjmp back to the call site. */
enum cjpeg_status { CJPEG_OK = 0, CJPEG_CORRUPT = 1, CJPEG_TRUNCATED = 2, CJPEG_TOO_LARGE = 3 };

typedef struct cjpeg_info {
    uint32_t width, height;     /* full size, as stored */
    uint32_t output_width, output_height;  /* after DCT scaling */
    int components;             /* as stored: 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK */
    int channels;               /* of the decoded output: 1 gray, 3 RGB, 4 CMYK */
    int progressive;
    int adobe_inverted;         /* CMYK written inverted by Adobe software */
    int warnings;               /* libjpeg's count of corrupt-data warnings */
    char message[200];
} cjpeg_info;

/* Reads the header. Returns a cjpeg_status. */
int cjpeg_probe(const uint8_t *data, size_t size, cjpeg_info *info);

/* Decodes the whole entropy-coded stream at 1/scale_denom size (1, 2, 4 or 8; libjpeg-turbo's
   DCT scaling still reads every coefficient). Gray and colour files come out as they are stored
   (1 or 3 channels); CMYK and YCCK come out as CMYK (4 channels). `pixels` holds
   output_width*output_height*channels bytes, learnt from a probe with the same scale. */
int cjpeg_decode(const uint8_t *data, size_t size, int scale_denom, uint8_t *pixels, size_t capacity, cjpeg_info *info);

/* Fills output_width/output_height/channels for a given scale without decoding. */
int cjpeg_probe_scaled(const uint8_t *data, size_t size, int scale_denom, cjpeg_info *info);

/* Encodes 8-bit gray (1) or RGB (3) pixels at quality 1..100. On CJPEG_OK, *out is a malloc'd
   buffer the caller frees with cjpeg_free. */
int cjpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality,
                 int progressive, uint8_t **out, size_t *out_size, char *message, size_t message_size);
void cjpeg_free(void *buffer);
#endif
