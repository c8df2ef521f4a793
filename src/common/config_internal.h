/* config_internal.h - shared by config.c (parsing) and config_help.c
 * (--help, dump): lookups in a settings table. Not for other modules. */
#ifndef SB_CONFIG_INTERNAL_H
#define SB_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"

/* The setting called name (len bytes; '-' and '_' interchangeable, as config
 * files often use '_'), or NULL. */
const struct sb_opt *sb_config_find_opt(const struct sb_config_spec *spec, const char *name,
                                        size_t len);
/* o's derived environment name, PREFIX_NAME_IN_CAPS, then suffix ("" or
 * "_FILE"), into out. */
void sb_config_derived_env(const struct sb_config_spec *spec, const struct sb_opt *o,
                           const char *suffix, char *out, size_t outsz);

#endif
