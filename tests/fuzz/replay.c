/* Replays a fuzz target's inputs without libFuzzer: linked with fuzz/X.c as BUILD/tests/fuzz/test_X, it runs
 * LLVMFuzzerTestOneInput once per file of fuzz/corpus/X/ (the seeds) and tests/fuzz/regressions/X/ (every
 * input that once crashed, kept after its fix), one cmocka test each. So `make test` keeps every fixed
 * bug fixed under gcc's ASan+UBSan, with no clang. Run from the repository root (tests/run does). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omni/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay(void **state)
{
    const char *path = *state;
    size_t len;
    char *data = omni_read_file(path, 64 << 20, &len);
    if (data == NULL)
        fail_msg("cannot read %s", path);
    /* An exact-size copy: ASan then sees a read one byte past the input, as libFuzzer's would. */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct CMUnitTest *)a)->name, ((const struct CMUnitTest *)b)->name);
}

static void add_dir(const char *dir, struct CMUnitTest **t, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        *t = omni_realloc(*t, (*n + 1) * sizeof **t);
        char *path = omni_asprintf("%s/%s", dir, e->d_name);
        (*t)[(*n)++] = (struct CMUnitTest){ .name = path, .test_func = replay, .initial_state = path };
    }
    closedir(d);
}

/* A target with no seeds yet still runs once, on the empty input, so a new fuzz/X.c is tested from the
 * start; its seeds belong under fuzz/corpus/X/. */
static void empty_input(void **state)
{
    (void)state;
    LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *base = strrchr(argv[0], '/');
    const char *target = base ? base + 1 : argv[0];
    if (strncmp(target, "test_", 5) == 0)
        target += 5;
    struct CMUnitTest *tests = NULL;
    size_t n = 0;
    char *corpus = omni_asprintf("fuzz/corpus/%s", target), *regress = omni_asprintf("tests/fuzz/regressions/%s", target);
    add_dir(corpus, &tests, &n);
    add_dir(regress, &tests, &n);
    qsort(tests, n, sizeof *tests, by_name);
    if (n == 0) {
        tests = omni_realloc(tests, sizeof *tests);
        tests[n++] = (struct CMUnitTest){ .name = "empty input", .test_func = empty_input };
    }
    char *group = omni_asprintf("fuzz-%s", target);
    int rc = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        if (tests[i].test_func == replay)
            free((void *)tests[i].name);
    free(tests);
    free(group);
    free(corpus);
    free(regress);
    return rc;
}
