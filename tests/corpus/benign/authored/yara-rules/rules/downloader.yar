rule Shell_Download_Exec
{
    meta:
        description = "Shell one-liner that downloads and executes a script"
        author = "example"
    strings:
        $curl_sh = /curl\s+-[a-zA-Z]*s[a-zA-Z]*\s+https?:\/\/[^\s|]+\s*\|\s*(ba)?sh/
        $wget_sh = /wget\s+-q?O-\s+https?:\/\/[^\s|]+\s*\|\s*(ba)?sh/
        $b64 = "base64 -d | bash"
        $devtcp = "/dev/tcp/"
    condition:
        any of them
}
