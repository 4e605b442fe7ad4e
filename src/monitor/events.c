/* events.c - event names and types, and the capture (verbosity) mask.
 *
 * Everything derives from KG_EVENT_NAME_MAP in kaygraph/monitor.h, the single
 * list of the event names (docs/events.md). */
#include <string.h>

#include "kaygraph/monitor.h"

static const char *const name_strs[] = {
#define KG__NAME_STR(name, str, type) str,
    KG_EVENT_NAME_MAP(KG__NAME_STR)
#undef KG__NAME_STR
};

static const kg_event_type name_types[] = {
#define KG__NAME_TYPE(name, str, type) KG_TYPE_##type,
    KG_EVENT_NAME_MAP(KG__NAME_TYPE)
#undef KG__NAME_TYPE
};

static const char *const type_strs[] = {
#define KG__TYPE_STR(name, str) str,
    KG_EVENT_TYPE_MAP(KG__TYPE_STR)
#undef KG__TYPE_STR
};

const char *kg_event_name_str(kg_event_name n)
{
    return (unsigned)n < KG_EVENT_NAME_COUNT ? name_strs[n] : "unknown";
}

kg_event_type kg_event_name_type(kg_event_name n)
{
    return (unsigned)n < KG_EVENT_NAME_COUNT ? name_types[n] : KG_TYPE_METRIC;
}

const char *kg_event_type_str(kg_event_type t)
{
    return (unsigned)t < KG_EVENT_TYPE_COUNT ? type_strs[t] : "unknown";
}

int kg_event_name_parse(const char *s)
{
    for (int i = 0; s && i < KG_EVENT_NAME_COUNT; i++)
        if (strcmp(s, name_strs[i]) == 0)
            return i;
    return -1;
}

int kg_event_type_parse(const char *s)
{
    for (int i = 0; s && i < KG_EVENT_TYPE_COUNT; i++)
        if (strcmp(s, type_strs[i]) == 0)
            return i;
    return -1;
}

uint32_t kg_capture_type(kg_event_type t)
{
    uint32_t mask = 0;
    for (int i = 0; i < KG_EVENT_NAME_COUNT; i++)
        if (name_types[i] == t)
            mask |= KG_CAPTURE(i);
    return mask;
}

static int capture_word(const char *word, uint32_t *mask)
{
    int n;
    if (strcmp(word, "all") == 0)
        *mask |= KG_CAPTURE_ALL;
    else if (strcmp(word, "none") == 0)
        ;
    else if ((n = kg_event_type_parse(word)) >= 0)
        *mask |= kg_capture_type((kg_event_type)n);
    else if ((n = kg_event_name_parse(word)) >= 0)
        *mask |= KG_CAPTURE(n);
    else
        return KG_EINVAL;
    return 0;
}

/* Words are separated by commas; spaces around a word are ignored.  An
 * empty word (",,,", "error,", " ") is an error: strtok used to skip them,
 * so "--capture ,,," captured nothing and said nothing. */
int kg_capture_parse(const char *list, uint32_t *mask, kg_error_t *err)
{
    char word[64];
    if (!list || strlen(list) >= 512)
        return kg_error_set(err, KG_EINVAL, "ConfigError", "capture list missing or too long");
    uint32_t m = 0;
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        const char *w = p, *e = p + n;
        while (w < e && *w == ' ')
            w++;
        while (e > w && e[-1] == ' ')
            e--;
        if (e == w)
            return kg_error_set(err, KG_EINVAL, "ConfigError",
                                "empty word in the capture list '%s' (types: lifecycle, data, "
                                "error, metric; or an event name; or all/none)", list);
        size_t wn = (size_t)(e - w) < sizeof word ? (size_t)(e - w) : sizeof word - 1;
        memcpy(word, w, wn);
        word[wn] = '\0';
        if (capture_word(word, &m) < 0)
            return kg_error_set(err, KG_EINVAL, "ConfigError",
                                "unknown event type or name '%.*s' (types: lifecycle, data, "
                                "error, metric; or an event name; or all/none)", (int)(e - w), w);
        p += n;
        if (!*p)
            break;
    }
    *mask = m;
    return 0;
}
