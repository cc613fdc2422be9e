#include "cjpeg.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    cjpeg_info *info;
    int premature_end;
} error_manager;

static void on_error_exit(j_common_ptr cinfo) {
    error_manager *errors = (error_manager *)cinfo->err;
    if (errors->info) (*cinfo->err->format_message)(cinfo, errors->info->message);
    longjmp(errors->jump, 1);
}

/* Warnings (level -1) are how libjpeg reports corrupt or missing entropy data; record them
   instead of printing to stderr. Trace messages (level >= 0) are ignored. */
static void on_emit_message(j_common_ptr cinfo, int level) {
    error_manager *errors = (error_manager *)cinfo->err;
    if (level >= 0) return;
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) errors->premature_end = 1;
    if (errors->info && errors->info->message[0] == 0) (*cinfo->err->format_message)(cinfo, errors->info->message);
}

/* A progressive JPEG may declare thousands of scans, each a full pass over the coefficients: a
   small file that takes minutes. Refuse past this many, as libjpeg-turbo's own tools do. */
#define CJPEG_MAX_SCANS 500

static void limit_scans(j_common_ptr cinfo) {
    j_decompress_ptr decompress = (j_decompress_ptr)cinfo;
    if (cinfo->is_decompressor && decompress->input_scan_number > CJPEG_MAX_SCANS) {
        error_manager *errors = (error_manager *)cinfo->err;
        if (errors->info) snprintf(errors->info->message, sizeof errors->info->message, "more than %d scans (decompression bomb)", CJPEG_MAX_SCANS);
        longjmp(errors->jump, 1);
    }
}

static void install_errors(struct jpeg_decompress_struct *cinfo, error_manager *errors, cjpeg_info *info) {
    cinfo->err = jpeg_std_error(&errors->base);
    errors->base.error_exit = on_error_exit;
    errors->base.emit_message = on_emit_message;
    errors->info = info;
    errors->premature_end = 0;
}

static void read_header(struct jpeg_decompress_struct *cinfo, const uint8_t *data, size_t size,
                        int scale_denom, cjpeg_info *info) {
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    info->width = cinfo->image_width;
    info->height = cinfo->image_height;
    info->components = cinfo->num_components;
    info->progressive = jpeg_has_multiple_scans(cinfo);
    info->adobe_inverted = cinfo->saw_Adobe_marker && (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK);
    if (cinfo->jpeg_color_space == JCS_GRAYSCALE) cinfo->out_color_space = JCS_GRAYSCALE;
    else if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) cinfo->out_color_space = JCS_CMYK;
    else cinfo->out_color_space = JCS_RGB;
    cinfo->scale_num = 1;
    cinfo->scale_denom = (unsigned)(scale_denom >= 1 ? scale_denom : 1);
    cinfo->dct_method = JDCT_ISLOW;  /* Pillow's default, so pixels agree */
    jpeg_calc_output_dimensions(cinfo);
    info->output_width = cinfo->output_width;
    info->output_height = cinfo->output_height;
    info->channels = cinfo->out_color_components;
}

int cjpeg_probe_scaled(const uint8_t *data, size_t size, int scale_denom, cjpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    error_manager errors;
    install_errors(&cinfo, &errors, info);
    jpeg_create_decompress(&cinfo);
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return errors.premature_end ? CJPEG_TRUNCATED : CJPEG_CORRUPT;
    }
    read_header(&cinfo, data, size, scale_denom, info);
    jpeg_destroy_decompress(&cinfo);
    return CJPEG_OK;
}

int cjpeg_probe(const uint8_t *data, size_t size, cjpeg_info *info) {
    return cjpeg_probe_scaled(data, size, 1, info);
}

int cjpeg_decode(const uint8_t *data, size_t size, int scale_denom, uint8_t *pixels, size_t capacity, cjpeg_info *info) {
    memset(info, 0, sizeof *info);
    struct jpeg_decompress_struct cinfo;
    error_manager errors;
    install_errors(&cinfo, &errors, info);
    struct jpeg_progress_mgr progress = { limit_scans, 0, 0, 0, 0 };
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &progress;
    if (setjmp(errors.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return errors.premature_end ? CJPEG_TRUNCATED : CJPEG_CORRUPT;
    }
    read_header(&cinfo, data, size, scale_denom, info);
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.out_color_components;
    if (stride * cinfo.output_height > capacity) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(info->message, sizeof info->message, "output buffer too small");
        return CJPEG_TOO_LARGE;
    }
    jpeg_start_decompress(&cinfo);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    info->warnings = (int)cinfo.err->num_warnings;
    jpeg_destroy_decompress(&cinfo);
    if (errors.premature_end) return CJPEG_TRUNCATED;
    return info->warnings > 0 ? CJPEG_CORRUPT : CJPEG_OK;
}

int cjpeg_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int channels, int quality,
                 int progressive, uint8_t **out, size_t *out_size, char *message, size_t message_size) {
    *out = NULL; *out_size = 0;
    if (channels != 1 && channels != 3) { snprintf(message, message_size, "unsupported channel count %d", channels); return CJPEG_CORRUPT; }
    struct jpeg_compress_struct cinfo;
    error_manager errors;
    cjpeg_info scratch;
    memset(&scratch, 0, sizeof scratch);
    cinfo.err = jpeg_std_error(&errors.base);
    errors.base.error_exit = on_error_exit;
    errors.base.emit_message = on_emit_message;
    errors.info = &scratch;
    unsigned char *volatile buffer = NULL;
    unsigned long buffer_size = 0;
    jpeg_create_compress(&cinfo);
    if (setjmp(errors.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        snprintf(message, message_size, "%s", scratch.message);
        return CJPEG_CORRUPT;
    }
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, &buffer_size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = buffer_size;
    return CJPEG_OK;
}

void cjpeg_free(void *buffer) { free(buffer); }
