/*
 * A QEMU TCG plugin that counts the guest instructions QEMU executes, so that benchmarks/ can set
 * QEMU's instruction count beside this emulator's (the Linux boot to power-off, say).
 *
 * Debian 12 ships qemu-system-ppc 7.2 with plugin support but neither the plugins nor the header, so
 * this file declares the few functions of QEMU's plugin API (version 1, the one QEMU 7.2 speaks) it
 * uses, as the API documentation gives them. Every translated block adds its instruction count to a
 * counter when it runs (an inline add, as QEMU's own counting plugins do); a block left early by an
 * exception still adds all of its instructions, so the count can run a little high.
 *
 * Load: qemu-system-ppc ... -plugin PATH/qemu_insn_count.so,out=FILE
 * At exit FILE holds one line: "instructions N".
 * Build: gcc -shared -fPIC -O2 -o qemu_insn_count.so qemu_insn_count.c (benchmarks/peers.py does).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                                     void *ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;
static char out_path[4096];

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *file = fopen(out_path, "w");
    if (file != NULL) {
        fprintf(file, "instructions %" PRIu64 "\n", executed);
        fclose(file);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                                int argc, char **argv)
{
    (void)info;
    for (int index = 0; index < argc; index++) {
        if (strncmp(argv[index], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[index] + 4);
        }
    }
    if (out_path[0] == '\0') {
        return -1;   /* nowhere to write the count: refuse to load */
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit, NULL);
    return 0;
}
