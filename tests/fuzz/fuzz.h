/* gatehouse — shared bits of the libFuzzer drivers (tests/fuzz/README.md).
 *
 * Each driver feeds one parser we own and, beyond "no crash, no sanitizer
 * report", checks the property that parser exists to guarantee: FUZZ_CHECK
 * aborts (a finding) when it does not hold. */
#ifndef GATEHOUSE_FUZZ_H
#define GATEHOUSE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__,     \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
