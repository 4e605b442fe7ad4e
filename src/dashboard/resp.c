/* dashboard/resp.c - see resp.h. */
#include "resp.h"

static const char kg__json_type[] = "application/json";

void kg__resp_error(kg__http_resp *resp, int status, const char *message)
{
    resp->status = status;
    resp->content_type = kg__json_type;
    resp->content_encoding = NULL;
    resp->static_body = NULL;
    kg__body_free(&resp->stream);
    kg_buf_reset(&resp->body);
    kg_buf_puts(&resp->body, "{\"error\":");
    kg_buf_json_cstr(&resp->body, message);
    kg_buf_puts(&resp->body, "}");
}

size_t kg__resp_body_len(const kg__http_resp *resp)
{
    if (resp->static_body)
        return resp->static_len;
    return resp->stream.n ? resp->stream.len : resp->body.len;
}

void kg__resp_free(kg__http_resp *resp)
{
    kg_buf_free(&resp->body);
    kg__body_free(&resp->stream);
}
