// Just enough PNG decoding to look at a headless browser's screenshot: size,
// and the RGB of every pixel (8-bit RGB or RGBA, non-interlaced, any filter).
import * as zlib from "node:zlib";

export interface Png {
    width: number;
    height: number;
    /** RGB of pixel (x, y). */
    rgb(x: number, y: number): [number, number, number];
}

export function decodePng(data: Buffer): Png {
    if (data.subarray(0, 8).toString("hex") !== "89504e470d0a1a0a") throw new Error("not a PNG");
    let offset = 8;
    let width = 0;
    let height = 0;
    let channels = 0;
    const idat: Buffer[] = [];
    while (offset < data.length) {
        const length = data.readUInt32BE(offset);
        const type = data.subarray(offset + 4, offset + 8).toString("ascii");
        const body = data.subarray(offset + 8, offset + 8 + length);
        if (type === "IHDR") {
            width = body.readUInt32BE(0);
            height = body.readUInt32BE(4);
            const depth = body[8];
            const colour = body[9];
            if (depth !== 8 || (colour !== 2 && colour !== 6) || body[12] !== 0)
                throw new Error(`unsupported PNG (depth ${depth}, colour ${colour})`);
            channels = colour === 6 ? 4 : 3;
        } else if (type === "IDAT") idat.push(body);
        offset += 12 + length;
    }
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = width * channels;
    const pixels = Buffer.alloc(stride * height);
    for (let y = 0; y < height; y++) {
        const filter = raw[y * (stride + 1)];
        const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
        for (let i = 0; i < stride; i++) {
            const a = i >= channels ? pixels[y * stride + i - channels] : 0;
            const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
            const c = y > 0 && i >= channels ? pixels[(y - 1) * stride + i - channels] : 0;
            let v = line[i];
            if (filter === 1) v += a;
            else if (filter === 2) v += b;
            else if (filter === 3) v += Math.floor((a + b) / 2);
            else if (filter === 4) {
                const p = a + b - c;
                const pa = Math.abs(p - a);
                const pb = Math.abs(p - b);
                const pc = Math.abs(p - c);
                v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            }
            pixels[y * stride + i] = v & 0xff;
        }
    }
    return {
        width,
        height,
        rgb: (x, y) => {
            const o = y * stride + x * channels;
            return [pixels[o], pixels[o + 1], pixels[o + 2]];
        },
    };
}
