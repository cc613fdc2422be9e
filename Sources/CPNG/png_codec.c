#include "cpng.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past this many pixels a file is refused before any row is allocated by libpng. */
#define CPNG_MAX_DIMENSION 1000000u

typedef struct reader {
    const uint8_t *data;
    size_t size, offset;
    int truncated;
    cpng_info *info;
} reader;

static void on_error(png_structp png, png_const_charp message) {
    reader *r = (reader *)png_get_error_ptr(png);
    snprintf(r->info->message, sizeof r->info->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    reader *r = (reader *)png_get_error_ptr(png);
    if (r->info->message[0] == 0) snprintf(r->info->message, sizeof r->info->message, "warning: %s", message);
}

static void on_read(png_structp png, png_bytep out, size_t length) {
    reader *r = (reader *)png_get_io_ptr(png);
    if (length > r->size - r->offset) {
        r->truncated = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(out, r->data + r->offset, length);
    r->offset += length;
}

static int classify(const reader *r) { return r->truncated ? CPNG_TRUNCATED : CPNG_CORRUPT; }

/* Sets up transforms to 8-bit output and fills `info`. */
static void read_header(png_structp png, png_infop header, cpng_info *info) {
    png_read_info(png, header);
    info->width = png_get_image_width(png, header);
    info->height = png_get_image_height(png, header);
    info->bit_depth = png_get_bit_depth(png, header);
    info->color_type = png_get_color_type(png, header);
    info->interlaced = png_get_interlace_type(png, header) != PNG_INTERLACE_NONE;
    info->has_trns = png_get_valid(png, header, PNG_INFO_tRNS) != 0;

    png_set_expand(png);        /* palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha */
    png_set_strip_16(png);      /* high byte, as Pillow's "RGB;16B" unpackers do */
    png_set_interlace_handling(png);
    png_read_update_info(png, header);
    info->channels = png_get_channels(png, header);
}

static png_structp create(reader *r, png_infop *header) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_warning);
    if (!png) return NULL;
    *header = png_create_info_struct(png);
    if (!*header) { png_destroy_read_struct(&png, NULL, NULL); return NULL; }
    png_set_read_fn(png, r, on_read);
    png_set_user_limits(png, CPNG_MAX_DIMENSION, CPNG_MAX_DIMENSION);
    return png;
}

int cpng_probe(const uint8_t *data, size_t size, cpng_info *info) {
    memset(info, 0, sizeof *info);
    reader r = { data, size, 0, 0, info };
    png_infop header = NULL;
    png_structp png = create(&r, &header);
    if (!png) { snprintf(info->message, sizeof info->message, "out of memory"); return CPNG_CORRUPT; }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &header, NULL);
        return classify(&r);
    }
    read_header(png, header, info);
    png_destroy_read_struct(&png, &header, NULL);
    return CPNG_OK;
}

int cpng_decode(const uint8_t *data, size_t size, uint8_t *pixels, size_t capacity, cpng_info *info) {
    memset(info, 0, sizeof *info);
    reader r = { data, size, 0, 0, info };
    png_infop header = NULL;
    png_structp png = create(&r, &header);
    if (!png) { snprintf(info->message, sizeof info->message, "out of memory"); return CPNG_CORRUPT; }
    /* volatile: modified between setjmp and a possible longjmp */
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_read_struct(&png, &header, NULL);
        return classify(&r);
    }
    read_header(png, header, info);
    size_t stride = (size_t)info->width * (size_t)info->channels;
    if (stride * info->height > capacity) {
        png_destroy_read_struct(&png, &header, NULL);
        snprintf(info->message, sizeof info->message, "output buffer too small");
        return CPNG_TOO_LARGE;
    }
    rows = malloc(sizeof(png_bytep) * info->height);
    if (!rows) png_error(png, "out of memory");
    for (uint32_t y = 0; y < info->height; y++) rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &header, NULL);
    return CPNG_OK;
}

int cpng_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels,
                uint8_t **out, size_t *out_size, char *message, size_t message_size) {
    static const png_uint_32 formats[] = { 0, PNG_FORMAT_GRAY, PNG_FORMAT_GA, PNG_FORMAT_RGB, PNG_FORMAT_RGBA };
    *out = NULL; *out_size = 0;
    if (channels < 1 || channels > 4) { snprintf(message, message_size, "unsupported channel count %d", channels); return CPNG_CORRUPT; }
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = formats[channels];
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) goto failed;
    *out = malloc(size);
    if (!*out) { snprintf(message, message_size, "out of memory"); png_image_free(&image); return CPNG_CORRUPT; }
    if (!png_image_write_to_memory(&image, *out, &size, 0, pixels, 0, NULL)) { free(*out); *out = NULL; goto failed; }
    *out_size = size;
    return CPNG_OK;
failed:
    snprintf(message, message_size, "%s", image.message);
    png_image_free(&image);
    return CPNG_CORRUPT;
}

void cpng_free(void *buffer) { free(buffer); }
